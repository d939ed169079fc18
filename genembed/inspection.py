"""Looking into an embedding: what `genembed inspect` prints.

* the logit lens: the tokens the LM head reads off each compression token's last-layer state;
* the nearest vocabulary words of the embedding in its teacher's space (the word lens);
* the nearest training query (the query lens, where the checkpoint has one);
* the decoded text (decoders.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .decoders import generate, get_decoder
from .errors import InputError


@torch.no_grad()
def logit_lens(model, texts, top_k: int = 5, instruction: str | None = None, batch_size: int = 32):
    """Top tokens the LM head reads off each compression token's last-layer state: for one text
    [C][top_k] tokens, for a list one such table per text. Inputs as for encode()."""
    single = isinstance(texts, str)
    texts = [texts] if single else list(texts)
    if top_k < 1:
        raise InputError(f"top_k must be >= 1, got {top_k}")
    model.eval()
    out: list = [None] * len(texts)
    tok, head = model.backbone.tokenizer, model.backbone.model.get_output_embeddings()
    for idx, ids, mask in model.batches(texts, instruction, batch_size, False, "logit_lens"):
        top = head(model.compression_states(ids, mask, split_prefix=False)).topk(top_k, dim=-1).indices.tolist()
        for i, rows in zip(idx, top):
            out[i] = [[tok.decode([t]) for t in row] for row in rows]
    return out[0] if single else out


def nearest_words(model, texts, k: int = 10, instruction: str | None = None, batch_size: int = 32, teacher=None):
    """Each text's embedding's k nearest vocabulary words in the teacher's space, with cosines: for one
    text a list of (word, cosine), for a list one such list per text. Loads the teacher unless given."""
    single = isinstance(texts, str)
    if k < 1:
        raise InputError(f"k must be >= 1, got {k}")
    emb = model.encode([texts] if single else texts, instruction=instruction, batch_size=batch_size)
    out = get_decoder(model, "words", teacher).words.nearest(emb, k)
    return out[0] if single else out


@dataclass
class Inspection:
    text: str
    decoded: str
    logit_lens: list[list[str]]  # per compression token, its top tokens
    words: list[tuple[str, float]] | None = None  # nearest words and cosines (the lenses)
    nearest_query: tuple[str, float] | None = None  # nearest training query and its cosine (the query lens)


def inspect(model, texts: list[str], via: str | None = None, instruction: str | None = None, top_k: int = 5,
            max_new_tokens: int = 48, words: int = 10) -> list[Inspection]:
    """Everything inspection shows, per text; one encode serves the words, the neighbour and the decode."""
    if not texts:
        raise InputError("no texts to inspect")
    decoder = get_decoder(model, via)
    lenses = logit_lens(model, list(texts), top_k=top_k, instruction=instruction)
    state = decoder.read(list(texts), instruction)
    decoded = generate(model, decoder.prompts(state), max_new_tokens)
    out = [Inspection(t, d, lens) for t, d, lens in zip(texts, decoded, lenses)]
    if decoder.reads_embeddings:
        for item, near in zip(out, decoder.words.nearest(state, words)):
            item.words = near
        if decoder.query_lens is not None:
            for item, row in zip(out, decoder.query_lens.nearest(state)):
                item.nearest_query = row[0]
    return out
