"""Text → token ids. The one place that decides how an input is laid out.

Two encoder layouts (a checkpoint records its own: GenEmbedConfig.input_layout); the special
tokens are appended later as embeddings, never as ids:

"chat" (genembed's own checkpoints):

    [pad ...] <chat prefix> <instruction> <text, truncated> <chat suffix> [T thought][C compression]

* The text sits inside the backbone's own chat template as the user turn, so the special
  tokens stand where the assistant's answer would begin (a base model without a template
  gets the bare instruction + text).
* Only the text is truncated, before anything is appended: the template, the instruction
  and the special tokens are never cut.

"official" (the official llm2vec-gen code's, docs/official-format.md §4):

    [pad ...] <what the tokenizer puts first, e.g. BOS> <instruction + text as one string, truncated> [T][C]

* No chat template; instruction and text are tokenized as one string by the model's own
  tokenizer, and cut from the end so that the whole row, special tokens included, holds at
  most max_tokens (the official max_length, 512).

In both, a special-token string inside user text (e.g. "<|im_end|>", "<question1>") is spelled out,
never turned into the special token (the official code would turn it into structure). Batches are
left-padded, so the special tokens of every row share the last positions; position ids come from
the attention mask, so padding does not shift positions.
"""
from __future__ import annotations

import torch
from .errors import InputError

_SENTINEL = "\u2063GENEMBED_TEXT\u2063"
_template_cache: dict[int, tuple[list[int], list[int]]] = {}


def chat_wrapping(tokenizer) -> tuple[list[int], list[int]]:
    """Token ids before and after the user's content in a one-turn chat prompt."""
    key = id(tokenizer)
    if key not in _template_cache:
        if getattr(tokenizer, "chat_template", None):
            rendered = tokenizer.apply_chat_template(
                [{"role": "user", "content": _SENTINEL}], add_generation_prompt=True, tokenize=False
            )
            before, after = rendered.split(_SENTINEL)
            prefix = tokenizer(before, add_special_tokens=False)["input_ids"]
            suffix = tokenizer(after, add_special_tokens=False)["input_ids"]
        else:
            bos = tokenizer.bos_token_id
            prefix, suffix = ([bos] if bos is not None else []), []
        _template_cache[key] = (prefix, suffix)
    return _template_cache[key]


def prompt_ids(tokenizer, texts: list[str], instruction: str = "", max_text_tokens: int = 256) -> list[list[int]]:
    """Chat-formatted ids for each text; the text alone is cut to max_text_tokens."""
    if max_text_tokens < 1:
        raise InputError(f"max_text_tokens must be >= 1, got {max_text_tokens}")
    if not texts:
        return []
    prefix, suffix = chat_wrapping(tokenizer)
    instruction_ids = plain_ids(tokenizer, [instruction])[0] if instruction else []
    text_ids = plain_ids(tokenizer, list(texts), max_length=max_text_tokens)
    return [prefix + instruction_ids + ids + suffix for ids in text_ids]


LAYOUTS = ("chat", "official")


def encoder_ids(tokenizer, texts: list[str], instruction: str, max_tokens: int, layout: str = "chat",
                n_special: int = 0) -> list[list[int]]:
    """The encoder's ids of each text in `layout` (see the module's docstring), special tokens not included.
    max_tokens: the text's budget ("chat") or the whole row's, the n_special tokens included ("official")."""
    if layout == "chat":
        return prompt_ids(tokenizer, texts, instruction, max_tokens)
    if layout != "official":
        raise InputError(f"input_layout must be one of {LAYOUTS}, got {layout!r}")
    first, last = added_ids(tokenizer)
    if last:
        raise InputError(f"this tokenizer appends {last} after a text: in the official layout they would come after "
                         f"the special tokens, which the official code does not expect")
    budget = max_tokens - len(first) - n_special
    if budget < 1:
        raise InputError(f"max_text_tokens {max_tokens} leaves no room for a text beside {len(first)} + {n_special} "
                         f"added and special tokens")
    if not texts:
        return []
    return [first + ids for ids in plain_ids(tokenizer, [instruction + t for t in texts], max_length=budget)]


def added_ids(tokenizer) -> tuple[list[int], list[int]]:
    """The ids the tokenizer's own rule puts before and after a text (e.g. Llama's BOS; none for Qwen)."""
    bare = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a", add_special_tokens=True)["input_ids"]
    start = next(i for i in range(len(full) - len(bare) + 1) if full[i:i + len(bare)] == bare)
    return full[:start], full[start + len(bare):]


def official_response_ids(tokenizer, responses: list[str], max_tokens: int) -> list[list[int]]:
    """Reconstruction targets as the official collator makes them: the stripped response followed by the
    literal string "<|end_of_text|>" (Llama-3's end token; plain text for other tokenizers), with the
    tokenizer's own added ids (BOS for Llama), cut to max_tokens."""
    first, _ = added_ids(tokenizer)
    texts = [r.strip() + "<|end_of_text|>" for r in responses]
    return [(first + ids)[:max_tokens] for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]


def plain_ids(tokenizer, texts: list[str], max_length: int | None = None) -> list[list[int]]:
    """Token ids of user text *as text*: a special-token string inside it (e.g. "<|im_end|>") is
    spelled out, never turned into the special token, so no text can close its turn and write
    the chat's structure itself."""
    kwargs = {"truncation": True, "max_length": max_length} if max_length else {}
    return tokenizer(texts, add_special_tokens=False, split_special_tokens=True, **kwargs)["input_ids"]


def response_ids(tokenizer, responses: list[str], max_tokens: int) -> list[list[int]]:
    """Response ids for reconstruction; an untruncated response ends with the end-of-turn token."""
    eos = tokenizer.eos_token_id
    out = []
    for ids in plain_ids(tokenizer, list(responses)):
        out.append(ids[:max_tokens] if len(ids) >= max_tokens else ids + ([eos] if eos is not None else []))
    return out


def pad(rows: list[list[int]], pad_id: int, side: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, attention_mask) as [batch, longest] tensors, padded on `side`."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        if not r:
            continue
        sl = slice(width - len(r), width) if side == "left" else slice(0, len(r))
        ids[i, sl] = torch.tensor(r, dtype=torch.long)
        mask[i, sl] = 1
    return ids, mask


def positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position ids that ignore left padding (0 at each row's first real token)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
