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

import weakref

import numpy as np
import torch

from .generate import generate_texts, greedy_from_embeddings
from .inputs import pad
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
        raise ValueError(f"via must be one of {VIA}, got {via!r}")
    if via == "queries" and model.query_lens is None:
        raise ValueError("this model has no query lens (query-lens.safetensors, written by `genembed train`): "
                         "decode with via='words' or via='soft-prompt'")
    return via


def get_decoder(model, via: str | None = None, teacher=None):
    """The decoder `via` names (resolve) for this model. The lenses load the model's teacher here unless
    `teacher` is given (a decoder built on the loaded teacher is kept for the model's next calls)."""
    via = resolve(model, via)
    if via == "soft-prompt":
        return SoftPromptDecoder(model)
    if teacher is None and model.config.teacher == "unknown":
        raise ValueError(f"via={via!r} reads the embedding in its teacher's space, and this model's teacher is not "
                         f"known (a published llm2vec-gen model): decode with via='soft-prompt', or pass teacher=")
    cached = _loaded.setdefault(model, {}) if teacher is None else {}
    if via not in cached:
        words = WordLens.for_model(model, teacher or load_teacher(model.config.teacher, model.backbone))
        cached[via] = LensDecoder(model, words, model.query_lens if via == "queries" else None)
    return cached[via]


def generate(model, prompts, max_new_tokens: int, batch_size: int = 32, bf16: bool = False) -> list[str]:
    """The model's LLM's greedy continuation of each prompt: token-id lists, or a tensor [n, P, hidden].
    On a backend other than torch (backends.py) token-id prompts are embedded and left-padded, so both
    kinds run through that backend's forward."""
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    backbone, lm = model.backbone, model.runtime.lm if model.runtime is not None else None
    if not isinstance(prompts, torch.Tensor) and lm is None:
        return generate_texts(backbone, prompts, max_new_tokens, batch_size, bf16=bf16)
    texts = []
    with torch.autocast(backbone.device.type, dtype=torch.bfloat16, enabled=bf16):
        for start in range(0, len(prompts), batch_size):
            chunk, mask = prompts[start:start + batch_size], None
            if not isinstance(chunk, torch.Tensor):
                ids, mask = pad(chunk, backbone.tokenizer.pad_token_id, side="left")
                chunk = backbone.model.get_input_embeddings()(ids.to(backbone.device))
            rows = greedy_from_embeddings(backbone, chunk.to(backbone.device), max_new_tokens, mask=mask, lm=lm)
            texts += [backbone.tokenizer.decode(r, skip_special_tokens=True).strip() for r in rows]
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
           batch_size: int = 32, show_progress_bar: bool | None = None, teacher=None):
    """Each text's decoded embedding (one string → one string). via: see the module's docstring."""
    single = isinstance(texts, str)
    texts = [texts] if single else list(texts)
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    decoder = get_decoder(model, via, teacher)
    state = decoder.read(texts, instruction, batch_size, show_progress_bar=show_progress_bar)
    out = generate(model, decoder.prompts(state), max_new_tokens, batch_size)
    return out[0] if single else out


def check_embeddings(model, embeddings) -> tuple[np.ndarray, bool]:
    """(embeddings as float32 [n, dim], whether one vector was given); bad shapes and values refused."""
    e = np.asarray(embeddings.detach().cpu() if isinstance(embeddings, torch.Tensor) else embeddings,
                   dtype=np.float32)
    single = e.ndim == 1
    e = e[None] if single else e
    dim = model.config.embedding_dim
    if e.ndim != 2 or e.shape[0] == 0 or e.shape[1] != dim:
        raise ValueError(f"embeddings must be [n, {dim}] (or one [{dim}] vector) with n >= 1, got shape "
                         f"{tuple(np.shape(embeddings))}")
    if not np.isfinite(e).all() or not (np.linalg.norm(e, axis=1) > 0).all():
        raise ValueError("embeddings must be finite and non-zero")
    return e, single


def decode_embeddings(model, embeddings, via: str | None = None, max_new_tokens: int = 64, batch_size: int = 32,
                      teacher=None):
    """Decode vectors of the model's embedding space (from encode(), an index, the mean of a cluster…)
    through a lens: one [dim] vector → a string, [n, dim] → n strings."""
    if resolve(model, via) == "soft-prompt":
        raise ValueError("the soft prompt belongs to a text, not to an embedding: decode the text with "
                         "decode(..., via='soft-prompt'), or decode embeddings via='queries' or 'words'")
    e, single = check_embeddings(model, embeddings)
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    decoder = get_decoder(model, via, teacher)
    out = generate(model, decoder.prompts(e), max_new_tokens, batch_size)
    return out[0] if single else out
