"""The trainable part of LLM2Vec-Gen, around a frozen backbone that it never changes.

    input ids ──embed──► [text embeddings][T thought][C compression] ──frozen LLM──► last-layer states
    compression states ──recon──► soft prompt (C vectors in the LLM's input space)
    soft prompt ──align──► mean over C ──► the embedding

Trainable: the T + C token embeddings, `recon` (hidden → hidden) and `align` (hidden → dim).
The backbone is held by reference (not a submodule), so `state_dict()` holds only what trains.
"""
from __future__ import annotations

import inspect
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .backbone import Backbone
from .inputs import pad, positions, prompt_ids
from .prefix_cache import SharedPrefixCache, drop_head
from .reader import chunked
from .st_compat import SentenceTransformerAPI, check_st_options, st_instruction

# The paper's instruction style: a query asks for its answer, a document for its summary.
DEFAULT_INSTRUCTIONS = {
    "query": "Generate a passage that best answers this question: ",
    "document": "Summarize the following passage: ",
}


@dataclass
class GenEmbedConfig:
    backbone: str = "smollm2-135m-instruct"  # alias, .gguf path, folder or hub id
    backbone_signature: dict = field(default_factory=dict)  # model_type / sizes, checked on load
    hidden_size: int = 576  # the backbone's hidden size
    embedding_dim: int = 384  # the teacher's dimension = the embedding's
    teacher: str = "all-minilm-l6-v2"  # what the alignment targets came from
    num_thought_tokens: int = 0  # T: scratch tokens whose states are discarded (the paper: 10)
    num_compression_tokens: int = 10  # C: their states become the soft prompt
    max_text_tokens: int = 256  # input texts are cut to this many tokens
    instructions: dict = field(default_factory=lambda: dict(DEFAULT_INSTRUCTIONS))
    default_instruction: str = "query"  # the instruction name encode() uses when given none
    # how compression states become the soft prompt. "linear": recon(states), the paper's. "centered": the
    # component every input shares is removed first and the prompt lives at the token embeddings' scale:
    # prompt_base + recon((states - state_mean) / state_scale) (a departure; see recipe.py's recon_form)
    recon_form: str = "linear"
    # what the frozen LLM reads the soft prompt in, for reconstruction and decoding. "none": the soft prompt
    # alone, the paper's. "chat" (a departure): as the user's message of the backbone's chat template, so the
    # LLM answers it as it answers a query
    prompt_frame: str = "none"

    def to_dict(self) -> dict:
        return asdict(self)


# token_init="words": words about what the compression tokens stand for, the response
INIT_WORDS = " answer response reply summary topic content meaning subject idea point"


def init_token_ids(tokenizer, token_init: str, count: int) -> list[int]:
    """`count` token ids whose embeddings start the special tokens (token_init "words" or "prompt-end")."""
    if token_init == "words":
        ids = tokenizer(INIT_WORDS, add_special_tokens=False)["input_ids"]
    elif token_init == "prompt-end":
        from .inputs import chat_wrapping

        ids = chat_wrapping(tokenizer)[1]
        if not ids:
            raise ValueError("token_init 'prompt-end' needs a backbone with a chat template (the tokens after "
                             "the user's text); this tokenizer has none: use 'mean' or 'words'")
    else:
        from .recipe import CHOICES

        raise ValueError(f"token_init must be one of {CHOICES['token_init']}, got {token_init!r}")
    return [ids[i % len(ids)] for i in range(count)]


SORT_WINDOW = 64  # batches read and length-sorted together by _batches


def _check_strings(texts: list, offset: int, desc: str) -> None:
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise TypeError(f"{desc}() expects strings; item {offset + bad} is {type(texts[bad]).__name__}")


def _cache_keyword(lm) -> str:
    """transformers 5.x names the KV cache `cache`; earlier versions `past_key_values`."""
    return "cache" if "cache" in inspect.signature(type(lm).forward).parameters else "past_key_values"


class GenEmbed(SentenceTransformerAPI, nn.Module):
    def __init__(self, config: GenEmbedConfig, backbone: Backbone):
        super().__init__()
        if config.num_compression_tokens < 1 or config.num_thought_tokens < 0:
            raise ValueError("need at least 1 compression token and a non-negative number of thought tokens")
        if backbone.hidden_size != config.hidden_size:
            raise ValueError(f"config hidden_size {config.hidden_size} != backbone's {backbone.hidden_size}")
        self.config = config
        object.__setattr__(self, "backbone", backbone)  # a reference, never a submodule
        self.prefix_cache = SharedPrefixCache()  # keys/values of the prompt head all inputs share
        self.query_lens = None  # the training queries decode(via="queries") reads through (query_lens.py)
        n_special = config.num_thought_tokens + config.num_compression_tokens
        self.special_tokens = nn.Parameter(torch.zeros(n_special, config.hidden_size))
        self.recon = nn.Linear(config.hidden_size, config.hidden_size)
        self.align = nn.Linear(config.hidden_size, config.embedding_dim)
        if config.recon_form == "centered":
            shape = (config.num_compression_tokens, config.hidden_size)
            # per compression position: the mean state over training inputs and the mean size of a
            # deviation from it (set from data before training: fit_state_statistics), kept in the checkpoint
            self.register_buffer("state_mean", torch.zeros(shape))
            self.register_buffer("state_scale", torch.ones(()))
            self.prompt_base = nn.Parameter(torch.zeros(shape))
        elif config.recon_form != "linear":
            raise ValueError(f"recon_form must be 'linear' or 'centered', got {config.recon_form!r}")
        if config.prompt_frame not in ("none", "chat"):
            raise ValueError(f"prompt_frame must be 'none' or 'chat', got {config.prompt_frame!r}")
        self.to(backbone.device)

    # -- construction --------------------------------------------------------------------
    @classmethod
    def create(cls, backbone: Backbone, embedding_dim: int, teacher: str, seed: int = 0, token_init: str = "mean",
               **overrides) -> "GenEmbed":
        """A freshly initialised student: special tokens from `token_init` (plus a little noise, so
        they differ), `recon` = identity (the states pass through unchanged), `align` random.

        token_init: "mean" — the mean token embedding; "words" — embeddings of INIT_WORDS' tokens;
        "prompt-end" — copies of the chat prompt's last tokens (the assistant header the special
        tokens follow). The last two repeat their tokens to fill T + C."""
        config = GenEmbedConfig(backbone=backbone.name, backbone_signature=backbone.signature(),
                                hidden_size=backbone.hidden_size, embedding_dim=embedding_dim,
                                teacher=teacher, **overrides)
        model = cls(config, backbone)
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            table = backbone.model.get_input_embeddings().weight.float().cpu()
            std = table.std(0).mean()
            noise = torch.randn(model.special_tokens.shape, generator=gen) * 0.1 * std
            start = table.mean(0) if token_init == "mean" else table[init_token_ids(backbone.tokenizer, token_init,
                                                                                    len(model.special_tokens))]
            model.special_tokens.copy_(start + noise)
            model.recon.weight.copy_(torch.eye(config.hidden_size))
            model.recon.bias.zero_()
            if config.recon_form == "centered":
                # deviations (unit mean norm once scaled) enter at the token embeddings' norm, in random
                # orthogonal directions; the shared part is a plain token-like vector
                q, _ = torch.linalg.qr(torch.randn(config.hidden_size, config.hidden_size, generator=gen))
                model.recon.weight.copy_(q * table.norm(dim=-1).mean())
                model.prompt_base.copy_(table.mean(0).expand_as(model.prompt_base))
            bound = config.hidden_size ** -0.5
            model.align.weight.copy_(torch.rand(model.align.weight.shape, generator=gen) * 2 * bound - bound)
            model.align.bias.zero_()
        return model

    @property
    def device(self) -> torch.device:
        return self.special_tokens.device

    # -- the forward pass ----------------------------------------------------------------
    def tokenize(self, texts: list[str], instruction: str = "") -> tuple[torch.Tensor, torch.Tensor]:
        rows = prompt_ids(self.backbone.tokenizer, texts, instruction, self.config.max_text_tokens)
        return pad(rows, self.backbone.tokenizer.pad_token_id, side="left")

    def compression_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                           split_prefix: bool | None = None) -> torch.Tensor:
        """Last-layer states [B, C, hidden] of the compression tokens appended to left-padded ids.

        split_prefix (default: when gradients are on): the text comes before the special tokens,
        so under causal attention its states never depend on anything trainable. It then runs
        once without autograd, into a KV cache, and only the T + C special positions run with
        gradients: same result, a fraction of the backward cost.
        The head every row shares (chat template + instruction) is not run at all: its keys/values
        come from `self.prefix_cache` (prefix_cache.py; `.enabled = False` turns that off).
        """
        lm = self.backbone.model
        base = lm.base_model
        cache_kw = _cache_keyword(base)
        ids, text_mask = input_ids.to(self.device), attention_mask.to(self.device)
        head, head_kv = self.prefix_cache.find(base, ids, text_mask, cache_kw)
        if head:  # the shared head is in head_kv; only the rest of each row runs
            ids, text_mask = drop_head(ids, text_mask, head, self.backbone.tokenizer.pad_token_id)
        text = lm.get_input_embeddings()(ids)
        special = self.special_tokens.to(text.dtype).unsqueeze(0).expand(text.shape[0], -1, -1)
        mask = torch.cat([text_mask.new_ones(text.shape[0], head), text_mask,
                          text_mask.new_ones(special.shape[:2])], dim=1)
        pos = positions(mask)[:, head:]
        past = {cache_kw: head_kv} if head else {}
        if split_prefix is None:
            split_prefix = torch.is_grad_enabled()
        if not split_prefix:
            hidden = base(inputs_embeds=torch.cat([text, special], dim=1), attention_mask=mask,
                          position_ids=pos, use_cache=bool(head), **past).last_hidden_state
        else:
            width = head + text.shape[1]
            with torch.no_grad():
                prefix = base(inputs_embeds=text, attention_mask=mask[:, :width], position_ids=pos[:, : text.shape[1]],
                              use_cache=True, **past)
            hidden = base(inputs_embeds=special, attention_mask=mask, position_ids=pos[:, text.shape[1]:],
                          use_cache=True, **{cache_kw: getattr(prefix, cache_kw)}).last_hidden_state
        return hidden[:, -self.config.num_compression_tokens:]

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(soft prompt [B, C, hidden], embedding [B, dim])."""
        states = self.compression_states(input_ids, attention_mask)
        # the projections are tiny: keep them in float32 even under bf16 autocast, so the
        # embedding carries no extra rounding on top of the backbone's
        with torch.autocast(self.device.type, enabled=False):
            soft_prompt = self.soft_prompt(states.float())
            embedding = self.align(soft_prompt).mean(dim=1)
        return soft_prompt, embedding

    def soft_prompt(self, states: torch.Tensor) -> torch.Tensor:
        """Compression states [B, C, hidden] → the soft prompt the LLM reads (see recon_form)."""
        if self.config.recon_form == "linear":
            return self.recon(states)
        return self.prompt_base + self.recon((states - self.state_mean) / self.state_scale)

    def decoder_input(self, soft_prompt: torch.Tensor) -> torch.Tensor:
        """What the frozen LLM reads before the response: the soft prompt, alone or in its chat frame."""
        if self.config.prompt_frame == "none":
            return soft_prompt
        from .inputs import chat_wrapping

        embed = self.backbone.model.get_input_embeddings()
        before, after = (embed(torch.tensor(ids, dtype=torch.long, device=soft_prompt.device)).to(soft_prompt.dtype)
                         .expand(soft_prompt.shape[0], -1, -1) for ids in chat_wrapping(self.backbone.tokenizer))
        return torch.cat([before, soft_prompt, after], dim=1)

    # -- encode --------------------------------------------------------------------------
    def resolve_instruction(self, instruction: str | None) -> str:
        """None → the config's default; a name in config.instructions → its text; else the string itself."""
        if instruction is None:
            instruction = self.config.default_instruction
        return self.config.instructions.get(instruction, instruction)

    def _windows(self, texts, instruction, batch_size, show_progress_bar, desc):
        """Yield (offset, n, batches): texts are read and tokenized one window of SORT_WINDOW
        batches at a time, rows offset..offset+n; `batches` yields (indices within the window,
        ids, mask), longest texts first, so each batch pads little while a corpus streamed from a
        file (reader.TextFile) never sits in memory whole."""
        if isinstance(texts, str):
            raise TypeError("internal: texts must be a list here")
        if len(texts) == 0:
            raise ValueError(f"{desc}() got an empty list of texts: pass at least one string")
        if isinstance(texts, list):  # checked before any work; a streamed source checks itself
            _check_strings(texts, 0, desc)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        instruction = self.resolve_instruction(instruction)
        if show_progress_bar is None:
            show_progress_bar = len(texts) > 4 * batch_size and sys.stderr.isatty()
        pad_id = self.backbone.tokenizer.pad_token_id

        def batches(rows, bar):
            order = sorted(range(len(rows)), key=lambda i: -len(rows[i]))
            for start in range(0, len(order), batch_size):
                idx = order[start:start + batch_size]
                yield (idx, *pad([rows[i] for i in idx], pad_id, side="left"))
                bar.update(len(idx))

        with tqdm(total=len(texts), desc=desc, disable=not show_progress_bar) as bar:
            offset = 0
            for chunk in chunked(texts, batch_size * SORT_WINDOW):
                _check_strings(chunk, offset, desc)
                rows = prompt_ids(self.backbone.tokenizer, chunk, instruction, self.config.max_text_tokens)
                yield offset, len(chunk), batches(rows, bar)
                offset += len(chunk)

    def _batches(self, texts, instruction, batch_size, show_progress_bar, desc):
        """(row indices, ids, mask) over all texts (see _windows)."""
        for offset, _, batches in self._windows(texts, instruction, batch_size, show_progress_bar, desc):
            for idx, ids, mask in batches:
                yield [offset + i for i in idx], ids, mask

    @torch.no_grad()
    def encode(self, texts, instruction: str | None = None, batch_size: int = 32, normalize: bool = False,
               show_progress_bar: bool | None = None, bf16: bool = False,
               output_path: str | Path | None = None, *, prompt_name: str | None = None, prompt: str | None = None,
               normalize_embeddings: bool | None = None, convert_to_tensor: bool = False,
               convert_to_numpy: bool = True, truncate_dim: int | None = None, precision: str = "float32",
               output_value: str | None = "sentence_embedding", device: str | None = None):
        """Embed texts → float32 array [n, dim] (a single string → [dim]).

        texts: a string, a list of strings, or a sized iterable read once in order, such as
        `genembed.reader.TextFile("corpus.jsonl")` (with output_path: a corpus larger than memory).
        instruction: None → the default ("query"); "query" / "document" → the paper's
        instructions; any other string is used as the instruction itself ("" for none).
        bf16: bf16 autocast (CPU or GPU), faster, within ~1e-2 cosine of float32.
        output_path: write the rows into this .npy file window by window and return it memory-
        mapped (read-only) instead of holding them in RAM: memory stays flat in corpus size.
        The keyword-only arguments are sentence-transformers' names (st_compat.py): prompt_name /
        prompt pick the instruction, normalize_embeddings = normalize, convert_to_tensor returns a
        tensor on the model's device (convert_to_numpy=False: a list of tensors); truncate_dim,
        precision, output_value and device are refused unless they ask for what genembed returns.
        """
        instruction = st_instruction(self, instruction, prompt_name, prompt)
        check_st_options(self, truncate_dim, precision, output_value, device)
        normalize = normalize or bool(normalize_embeddings)
        if (convert_to_tensor or not convert_to_numpy) and output_path is not None:
            raise ValueError("output_path writes a .npy file: it cannot be combined with convert_to_tensor / "
                             "convert_to_numpy=False")
        single = isinstance(texts, str)
        if single:
            texts = [texts]
        elif isinstance(texts, tuple) or not hasattr(texts, "__len__"):
            texts = list(texts)  # (a generator: its length is needed for the output's shape)
        was_training = self.training
        self.eval()
        shape = (len(texts), self.config.embedding_dim)
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bf16)
        windows = self._windows(texts, instruction, batch_size, show_progress_bar, "encode")
        out = None if output_path is not None else np.zeros(shape, dtype=np.float32)
        if output_path is not None:
            # filled under a temporary name and renamed at the end: a failed run leaves an older file intact
            output_path = Path(output_path)
            partial = output_path.with_name(output_path.name + ".partial")
            output_path.parent.mkdir(parents=True, exist_ok=True)
            sink = open(partial, "wb")
            np.lib.format.write_array_header_1_0(sink, {"descr": "<f4", "fortran_order": False, "shape": shape})
        try:
            for offset, n, batches in windows:
                block = np.zeros((n, shape[1]), dtype=np.float32)
                for idx, ids, mask in batches:
                    with autocast:
                        _, emb = self(ids, mask)
                    emb = emb.float()
                    if normalize:
                        emb = torch.nn.functional.normalize(emb, dim=-1)
                    block[idx] = emb.cpu().numpy()
                if out is not None:
                    out[offset:offset + n] = block
                else:
                    sink.write(block.tobytes())  # rows of a window are consecutive input rows
            if output_path is not None:
                sink.close()
                partial.replace(output_path)
                out = np.load(output_path, mmap_mode="r")
        finally:
            if output_path is not None:
                sink.close()
                partial.unlink(missing_ok=True)
            self.train(was_training)
        if convert_to_tensor:
            out = torch.from_numpy(out).to(self.device)
        elif not convert_to_numpy:
            out = list(torch.from_numpy(out).to(self.device))
        return out[0] if single else out

    def encode_query(self, texts, **kwargs):
        """encode() with the query instruction (unless prompt_name / prompt names another)."""
        return self.encode(texts, **self._default_prompt("query", kwargs))

    def encode_document(self, texts, **kwargs):
        """encode() with the document instruction (unless prompt_name / prompt names another)."""
        return self.encode(texts, **self._default_prompt("document", kwargs))

    @staticmethod
    def _default_prompt(name: str, kwargs: dict) -> dict:
        if all(kwargs.get(k) is None for k in ("instruction", "prompt_name", "prompt")):
            kwargs = {**kwargs, "instruction": name}
        return kwargs

    # -- decode --------------------------------------------------------------------------
    @torch.no_grad()
    def generate_from_soft_prompt(self, soft_prompt: torch.Tensor, max_new_tokens: int = 64,
                                  use_cache: bool = True) -> list[list[int]]:
        """Greedy tokens the frozen LLM writes after the soft prompt (KV-cached by default); the
        prompt is read in the model's frame (decoder_input)."""
        lm, tok = self.backbone.model, self.backbone.tokenizer
        embed = lm.get_input_embeddings()
        prompt = self.decoder_input(soft_prompt).to(embed.weight.dtype)
        batch = prompt.shape[0]
        eos = tok.eos_token_id
        tokens = torch.empty(batch, 0, dtype=torch.long, device=prompt.device)
        finished = torch.zeros(batch, dtype=torch.bool, device=prompt.device)
        past, cache_kw = None, _cache_keyword(lm)
        for _ in range(max_new_tokens):
            if past is None or not use_cache:
                inputs = torch.cat([prompt, embed(tokens)], dim=1)
            else:
                inputs = embed(tokens[:, -1:])
            out = lm(inputs_embeds=inputs, use_cache=use_cache, logits_to_keep=1, **{cache_kw: past})
            past = getattr(out, cache_kw, None) if use_cache else None
            next_token = out.logits[:, -1].argmax(-1)
            next_token = torch.where(finished, torch.full_like(next_token, tok.pad_token_id), next_token)
            tokens = torch.cat([tokens, next_token[:, None]], dim=1)
            finished |= next_token == eos
            if finished.all():
                break
        result = []
        for row in tokens.tolist():
            result.append(row[: row.index(eos)] if eos in row else row)
        return result

    DECODERS = ("queries", "words", "soft-prompt")

    @torch.no_grad()
    def decode(self, texts, max_new_tokens: int = 64, instruction: str | None = None, batch_size: int = 32,
               show_progress_bar: bool | None = None, via: str | None = None) -> list[str] | str:
        """What each text's embedding "says", as text the frozen LLM writes (greedy).

        via="queries" (the default where the checkpoint has a query lens; a departure, see
        query_lens.py): the LLM answers the nearest training query followed by the embedding's
        nearest words. via="words" (the default otherwise; word_lens.py): the LLM answers a request
        made of those words alone. via="soft-prompt" (the paper's): the LLM continues the text's soft
        prompt, which no checkpoint measured here makes input-specific."""
        via = self.resolve_decoder(via)
        single = isinstance(texts, str)
        texts = [texts] if single else list(texts)
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        self.eval()
        if via != "soft-prompt":
            emb = self.encode(texts, instruction=instruction, batch_size=batch_size,
                              show_progress_bar=show_progress_bar)
            out = self.decode_embeddings(emb, max_new_tokens, batch_size, via)
            return out[0] if single else out
        out: list[str] = [""] * len(texts)
        for idx, ids, mask in self._batches(texts, instruction, batch_size, show_progress_bar, "decode"):
            soft_prompt, _ = self(ids, mask)
            for i, row in zip(idx, self.generate_from_soft_prompt(soft_prompt, max_new_tokens)):
                out[i] = self.backbone.tokenizer.decode(row, skip_special_tokens=True).strip()
        return out[0] if single else out

    def resolve_decoder(self, via: str | None) -> str:
        """The decoder `via` names, checked; None: the query lens where the model has one, else the words."""
        if via is None:
            via = "queries" if self.query_lens is not None else "words"
        if via not in self.DECODERS:
            raise ValueError(f"via must be one of {self.DECODERS}, got {via!r}")
        if via == "queries" and self.query_lens is None:
            raise ValueError("this model has no query lens (query-lens.safetensors, written by `genembed train`): "
                             "decode with via='words' or via='soft-prompt'")
        return via

    @torch.no_grad()
    def decode_embeddings(self, embeddings, max_new_tokens: int = 64, batch_size: int = 32,
                          via: str | None = None) -> list[str] | str:
        """Decode vectors of this model's embedding space (from encode(), an index, the mean of a
        cluster…) through a lens: one [dim] vector → a string, [n, dim] → n strings. via as decode()'s,
        but the soft prompt is not an embedding's, so via="soft-prompt" is refused."""
        via = self.resolve_decoder(via)
        if via == "soft-prompt":
            raise ValueError("the soft prompt belongs to a text, not to an embedding: decode the text with "
                             "decode(..., via='soft-prompt'), or decode embeddings via='queries' or 'words'")
        e = np.asarray(embeddings.detach().cpu() if isinstance(embeddings, torch.Tensor) else embeddings,
                       dtype=np.float32)
        single = e.ndim == 1
        e = e[None] if single else e
        if e.ndim != 2 or e.shape[0] == 0 or e.shape[1] != self.config.embedding_dim:
            raise ValueError(f"embeddings must be [n, {self.config.embedding_dim}] (or one [{self.config.embedding_dim}]"
                             f" vector) with n >= 1, got shape {tuple(np.shape(embeddings))}")
        if not np.isfinite(e).all() or not (np.linalg.norm(e, axis=1) > 0).all():
            raise ValueError("embeddings must be finite and non-zero")
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        from .generate import generate_texts
        from .word_lens import request_ids

        self.eval()
        out = generate_texts(self.backbone, request_ids(self.backbone.tokenizer, self.requests(e, via)),
                             max_new_tokens, batch_size)
        return out[0] if single else out

    def requests(self, embeddings, via: str = "words") -> list[str]:
        """The user's turn each embedding decodes through, for via="words" or via="queries"."""
        if via == "words":
            return self.word_lens.requests(embeddings)
        return self.query_lens.requests(embeddings, self.word_lens.nearest(embeddings))

    @property
    def word_lens(self):
        """The teacher-space word lens of this model (word_lens.py), built on first use."""
        if getattr(self, "_word_lens", None) is None:
            from .word_lens import WordLens

            object.__setattr__(self, "_word_lens", WordLens.for_model(self))
        return self._word_lens

    def nearest_words(self, texts, k: int = 10, instruction: str | None = None,
                      batch_size: int = 32) -> list[tuple[str, float]] | list[list[tuple[str, float]]]:
        """Each text's embedding's k nearest vocabulary words in the teacher's space, with cosines:
        for one text a list of (word, cosine), for a list one such list per text. Inputs as encode()."""
        single = isinstance(texts, str)
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        emb = self.encode([texts] if single else texts, instruction=instruction, batch_size=batch_size)
        out = self.word_lens.nearest(emb, k)
        return out[0] if single else out

    @torch.no_grad()
    def logit_lens(self, texts, top_k: int = 5, instruction: str | None = None,
                   batch_size: int = 32) -> list[list[str]] | list[list[list[str]]]:
        """Top tokens the LM head reads off each compression token's last-layer state: for one text
        [C][top_k] tokens, for a list one such table per text. Inputs as for encode()."""
        single = isinstance(texts, str)
        texts = [texts] if single else list(texts)
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        self.eval()
        out: list = [None] * len(texts)
        tok = self.backbone.tokenizer
        for idx, ids, mask in self._batches(texts, instruction, batch_size, False, "logit_lens"):
            states = self.compression_states(ids, mask, split_prefix=False)
            top = self.backbone.model.get_output_embeddings()(states).topk(top_k, dim=-1).indices.tolist()
            for i, rows in zip(idx, top):
                out[i] = [[tok.decode([t]) for t in row] for row in rows]
        return out[0] if single else out
