"""Decoders: what an embedding "says", as text the frozen LLM writes (greedy).

Three decoders, behind one small interface that `decode`, `genembed inspect`, the server and the
decoding evaluation share:

* "soft-prompt" (the paper's): the LLM continues a text's soft prompt (recon of its compression
  states). It reads texts, not embeddings: the soft prompt is not a function of the embedding.
* "words" (a departure; word_lens.py): the LLM answers a request made of the embedding's nearest
  vocabulary words in the teacher's space.
* "queries" (a departure; query_lens.py): the LLM answers the checkpoint's nearest training query
  followed by those words. The default wherever a checkpoint has a query lens, else "words".

The lenses read embeddings in the teacher's space, so they need the teacher: `get_decoder` loads
it (config.teacher; for a `self` student the backbone itself) unless one is passed, and nothing
else does. A decoder turns inputs into a *state* (`read`: embeddings, or soft prompts), a state
into *prompts* (token ids of a request in the chat template, or a tensor of input embeddings)
that `generate` continues and `answer_cross_entropy` scores.
"""
from __future__ import annotations

import math
import sys
import weakref

import numpy as np
import torch
from tqdm.auto import tqdm

from .backbone import cache_keyword
from .backends import check_threads, threads
from .errors import InputError
from .inputs import pad, positions
from .losses import reconstruction_loss
from .teachers import load_teacher
from .word_lens import WordLens, request_ids

VIA = ("queries", "words", "soft-prompt")


class SoftPromptDecoder:
    """The paper's decoder: the LLM reads a text's soft prompt alone."""

    name, reads_embeddings = "soft-prompt", False

    def __init__(self, model):
        self.model = model

    @torch.no_grad()
    def read(self, texts: list[str], instruction: str | None = None, batch_size: int = 32, bf16: bool = False,
             show_progress_bar: bool | None = None) -> torch.Tensor:
        """The soft prompts [n, C, hidden] (float32) of the texts, in input order."""
        out = [None] * len(texts)
        with torch.autocast(self.model.device.type, dtype=torch.bfloat16, enabled=bf16):
            for idx, ids, mask in self.model.batches(texts, instruction, batch_size, show_progress_bar, "decode"):
                for i, prompt in zip(idx, self.model(ids, mask)[0].float()):
                    out[i] = prompt
        return torch.stack(out)

    def prompts(self, state: torch.Tensor) -> torch.Tensor:
        return state

    @staticmethod
    def mean(state: torch.Tensor) -> torch.Tensor:
        return state.mean(0, keepdim=True)


class LensDecoder:
    """The word lens, or with a query lens the query lens: a request the LLM answers."""

    reads_embeddings = True

    def __init__(self, model, words: WordLens, query_lens=None):
        self.model, self.words, self.query_lens = model, words, query_lens
        self.name = "words" if query_lens is None else "queries"

    def read(self, texts: list[str], instruction: str | None = None, batch_size: int = 32, bf16: bool = False,
             show_progress_bar: bool | None = None) -> np.ndarray:
        """The texts' embeddings: what the lens reads."""
        return self.model.encode(texts, instruction=instruction, batch_size=batch_size, bf16=bf16,
                                 show_progress_bar=show_progress_bar)

    def requests(self, embeddings: np.ndarray) -> list[str]:
        """The user's turn each embedding decodes through."""
        if self.query_lens is None:
            return self.words.requests(embeddings)
        return self.query_lens.requests(embeddings, self.words.nearest(embeddings))

    def prompts(self, embeddings: np.ndarray) -> list[list[int]]:
        return request_ids(self.model.backbone.tokenizer, self.requests(embeddings))

    @staticmethod
    def mean(embeddings: np.ndarray) -> np.ndarray:
        return embeddings.mean(0, keepdims=True)


_loaded: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # model -> {via: decoder with its own teacher}


def resolve(model, via: str | None) -> str:
    """The decoder `via` names, checked; None: the checkpoint's own default (a published model's: the soft
    prompt), else the query lens where the model has one, else the words."""
    if via is None:
        via = model.config.decoder or ("queries" if model.query_lens is not None else "words")
    if via not in VIA:
        raise InputError(f"via must be one of {VIA}, got {via!r}")
    if via == "queries" and model.query_lens is None:
        raise InputError("this model has no query lens (query-lens.safetensors, written by `genembed train`): "
                         "decode with via='words' or via='soft-prompt'")
    return via


def get_decoder(model, via: str | None = None, teacher=None):
    """The decoder `via` names (resolve) for this model. The lenses load the model's teacher here unless
    `teacher` is given (a decoder built on the loaded teacher is kept for the model's next calls)."""
    via = resolve(model, via)
    if via == "soft-prompt":
        return SoftPromptDecoder(model)
    if teacher is None and model.config.teacher == "unknown":
        raise InputError(f"via={via!r} reads the embedding in its teacher's space, and this model's teacher is not "
                         f"known (a published llm2vec-gen model): decode with via='soft-prompt', or pass teacher=")
    cached = _loaded.setdefault(model, {}) if teacher is None else {}
    if via not in cached:
        words = WordLens.for_model(model, teacher or load_teacher(model.config.teacher, model.backbone))
        cached[via] = LensDecoder(model, words, model.query_lens if via == "queries" else None)
    return cached[via]


def check_decoding_options(max_new_tokens, repetition_penalty, no_repeat_ngram_size) -> None:
    """The greedy decoder's options, refused with the reason where out of range."""
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise InputError(f"max_new_tokens must be a whole number >= 1, got {max_new_tokens!r}")
    if isinstance(repetition_penalty, bool) or not isinstance(repetition_penalty, (int, float)) \
            or not math.isfinite(repetition_penalty) or repetition_penalty <= 0:
        raise InputError(f"repetition_penalty must be a finite number > 0 (1.0: off; above 1 discourages tokens "
                         f"already written), got {repetition_penalty!r}")
    if isinstance(no_repeat_ngram_size, bool) or not isinstance(no_repeat_ngram_size, int) or no_repeat_ngram_size < 0:
        raise InputError(f"no_repeat_ngram_size must be a whole number >= 0 (0: off; n: no n tokens in a row "
                         f"written twice), got {no_repeat_ngram_size!r}")


def penalise(logits: torch.Tensor, written: torch.Tensor, repetition_penalty: float = 1.0,
             no_repeat_ngram_size: int = 0) -> torch.Tensor:
    """Next-token logits [B, vocab] adjusted for the tokens each row has written so far ([B, t]), in place.

    repetition_penalty p (the CTRL paper's, as transformers applies it): the logit of every token the row
    has written is divided by p where positive, multiplied by p where negative. no_repeat_ngram_size n:
    a token that would complete an n-gram the row has already written is ruled out. Both look at the
    written tokens only, not the prompt (a lens's request is made of the words the answer may use)."""
    if repetition_penalty != 1.0 and written.shape[1]:
        seen = logits.gather(1, written)
        logits.scatter_(1, written, torch.where(seen > 0, seen / repetition_penalty, seen * repetition_penalty))
    n = no_repeat_ngram_size
    if n and written.shape[1] >= n:
        for row, tokens in enumerate(written.tolist()):
            tail = tokens[len(tokens) - n + 1:] if n > 1 else []
            banned = {tokens[i + n - 1] for i in range(len(tokens) - n + 1) if tokens[i:i + n - 1] == tail}
            if banned:
                logits[row, list(banned)] = -math.inf
    return logits


@torch.no_grad()
def greedy(model, prompts: torch.Tensor, max_new_tokens: int, mask: torch.Tensor | None = None,
           repetition_penalty: float = 1.0, no_repeat_ngram_size: int = 0, pace=None) -> list[list[int]]:
    """Greedy tokens the model's LLM writes after prompts of input embeddings [B, P, hidden] (mask: [B, P]
    for left-padded rows), each row cut before its end-of-turn token. Runs on the model's backend.

    A row that has ended leaves the batch (its rows of the KV cache are dropped), so a batch runs no step
    for it: decoding n prompts together does at most the steps decoding them one by one does, each for
    the rows still writing. pace(): called every few steps (backends.threads' rechoose)."""
    backbone = model.backbone
    lm = model.runtime.lm if model.runtime is not None else backbone.model
    cache_kw, embed = cache_keyword(backbone.model), backbone.model.get_input_embeddings()
    eos = backbone.tokenizer.eos_token_id
    inputs = prompts.to(embed.weight.dtype)
    if mask is not None and bool(mask.all()):
        mask = None  # nothing padded: the plain causal path
    out_rows: list[list[int]] = [[] for _ in range(inputs.shape[0])]
    active = torch.arange(inputs.shape[0], device=inputs.device)  # which prompt each batch row is
    written = torch.empty(inputs.shape[0], 0, dtype=torch.long, device=inputs.device)
    past = None
    for step in range(max_new_tokens):
        if pace is not None and step % 8 == 0 and step:
            pace()
        placed = {}
        if mask is not None:
            placed = {"attention_mask": mask, "position_ids": positions(mask)[:, -inputs.shape[1]:]}
        out = lm(inputs_embeds=inputs, use_cache=True, logits_to_keep=1, **placed, **{cache_kw: past})
        past = getattr(out, cache_kw)
        logits = out.logits[:, -1].float()
        if repetition_penalty != 1.0 or no_repeat_ngram_size:
            logits = penalise(logits, written, repetition_penalty, no_repeat_ngram_size)
        token = logits.argmax(-1)
        ended = token == eos
        for row, t in zip(active.tolist(), token.tolist()):
            if t != eos:
                out_rows[row].append(t)
        if bool(ended.any()):
            keep = (~ended).nonzero().squeeze(1)
            if keep.numel() == 0:
                break
            active, token, written = active[keep], token[keep], written[keep]
            past.batch_select_indices(keep)
            if mask is not None:
                mask = mask[keep]
                if bool(mask.all()):
                    mask = None
        written = torch.cat([written, token[:, None]], dim=1)
        if mask is not None:
            mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
        inputs = embed(token[:, None])
    return out_rows


def generate(model, prompts, max_new_tokens: int, batch_size: int = 32, bf16: bool = False,
             repetition_penalty: float = 1.0, no_repeat_ngram_size: int = 0,
             show_progress_bar: bool | None = None, desc: str = "generating") -> list[str]:
    """The model's LLM's greedy continuation of each prompt: token-id lists (embedded and left-padded), or
    a tensor [n, P, hidden], `batch_size` prompts at a time, with the model's num_threads (model_threads).
    repetition_penalty, no_repeat_ngram_size: see penalise (off by default: the paper's greedy decoder).
    show_progress_bar: a bar of texts written (None: where there are several batches and a terminal)."""
    check_decoding_options(max_new_tokens, repetition_penalty, no_repeat_ngram_size)
    if show_progress_bar is None:
        show_progress_bar = len(prompts) > batch_size and sys.stderr.isatty()
    backbone, texts = model.backbone, []
    with torch.autocast(backbone.device.type, dtype=torch.bfloat16, enabled=bf16), model_threads(model) as chosen, \
            tqdm(total=len(prompts), desc=desc, unit="text", disable=not show_progress_bar) as bar:
        for start in range(0, len(prompts), batch_size):
            chunk, mask = prompts[start:start + batch_size], None
            if not isinstance(chunk, torch.Tensor):
                ids, mask = pad(chunk, backbone.tokenizer.pad_token_id, side="left")
                ids, mask = ids.to(backbone.device), mask.to(backbone.device)
                chunk = backbone.model.get_input_embeddings()(ids)
            rows = greedy(model, chunk.to(backbone.device), max_new_tokens, mask, repetition_penalty,
                          no_repeat_ngram_size, chosen.rechoose)
            texts += [backbone.tokenizer.decode(r, skip_special_tokens=True).strip() for r in rows]
            bar.update(len(rows))
    return texts


@torch.no_grad()
def answer_cross_entropy(backbone, prompts, answers: list[list[int]], batch_size: int = 16) -> float:
    """Mean over rows of each answer's cross-entropy per token (nats) read after its prompt."""
    pad_id, embed = backbone.tokenizer.pad_token_id, backbone.model.get_input_embeddings()
    out = []
    for start in range(0, len(answers), batch_size):
        part = slice(start, min(start + batch_size, len(answers)))
        if isinstance(prompts, torch.Tensor):
            prefix, prefix_mask = prompts[part].to(backbone.device), None
        else:
            ids, prefix_mask = (t.to(backbone.device) for t in pad(prompts[part], pad_id, side="left"))
            prefix = embed(ids)
        a_ids, a_mask = (t.to(backbone.device) for t in pad(answers[part], pad_id, side="right"))
        out.append(reconstruction_loss(backbone.model, prefix, a_ids, a_mask, per_row=True, prompt_mask=prefix_mask))
    return float(torch.cat(out).mean())


def repeat(prompts, n: int):
    """One prompt (a list of one id list, or a [1, P, hidden] tensor) as n rows."""
    return prompts.expand(n, -1, -1) if isinstance(prompts, torch.Tensor) else prompts * n


def rotate(prompts):
    """Each row's prompt given to the next row: another input's prompt for every row."""
    return prompts.roll(1, 0) if isinstance(prompts, torch.Tensor) else prompts[1:] + prompts[:1]


def decode(model, texts, via: str | None = None, max_new_tokens: int = 64, instruction: str | None = None,
           batch_size: int = 32, show_progress_bar: bool | None = None, teacher=None,
           repetition_penalty: float = 1.0, no_repeat_ngram_size: int = 0):
    """Each text's decoded embedding (one string → one string). via: see the module's docstring;
    repetition_penalty, no_repeat_ngram_size: see penalise (off by default). Runs with the model's
    num_threads (backends.threads)."""
    single = isinstance(texts, str)
    texts = [texts] if single else list(texts)
    check_decoding_options(max_new_tokens, repetition_penalty, no_repeat_ngram_size)
    decoder = get_decoder(model, via, teacher)
    with model_threads(model):  # the read (an encode for the lenses) too
        state = decoder.read(texts, instruction, batch_size, show_progress_bar=show_progress_bar)
        out = generate(model, decoder.prompts(state), max_new_tokens, batch_size,
                       repetition_penalty=repetition_penalty, no_repeat_ngram_size=no_repeat_ngram_size,
                       show_progress_bar=show_progress_bar)
    return out[0] if single else out


def model_threads(model):
    """backends.threads with the model's num_threads (None: follow the free cores): decoding's thread count."""
    count = getattr(model, "num_threads", None)
    check_threads(count)
    return threads(count)


def check_embeddings(model, embeddings) -> tuple[np.ndarray, bool]:
    """(embeddings as float32 [n, dim], whether one vector was given); bad shapes and values refused."""
    e = np.asarray(embeddings.detach().cpu() if isinstance(embeddings, torch.Tensor) else embeddings,
                   dtype=np.float32)
    single = e.ndim == 1
    e = e[None] if single else e
    dim = model.config.embedding_dim
    if e.ndim != 2 or e.shape[0] == 0 or e.shape[1] != dim:
        raise InputError(f"embeddings must be [n, {dim}] (or one [{dim}] vector) with n >= 1, got shape "
                         f"{tuple(np.shape(embeddings))}")
    if not np.isfinite(e).all() or not (np.linalg.norm(e, axis=1) > 0).all():
        raise InputError("embeddings must be finite and non-zero")
    return e, single


def decode_embeddings(model, embeddings, via: str | None = None, max_new_tokens: int = 64, batch_size: int = 32,
                      teacher=None, repetition_penalty: float = 1.0, no_repeat_ngram_size: int = 0):
    """Decode vectors of the model's embedding space (from encode(), an index, the mean of a cluster…)
    through a lens: one [dim] vector → a string, [n, dim] → n strings. repetition_penalty,
    no_repeat_ngram_size: see penalise (off by default)."""
    if resolve(model, via) == "soft-prompt":
        raise InputError("the soft prompt belongs to a text, not to an embedding: decode the text with "
                         "decode(..., via='soft-prompt'), or decode embeddings via='queries' or 'words'")
    e, single = check_embeddings(model, embeddings)
    check_decoding_options(max_new_tokens, repetition_penalty, no_repeat_ngram_size)
    decoder = get_decoder(model, via, teacher)
    out = generate(model, decoder.prompts(e), max_new_tokens, batch_size, repetition_penalty=repetition_penalty,
                   no_repeat_ngram_size=no_repeat_ngram_size)
    return out[0] if single else out
