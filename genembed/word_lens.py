"""The word lens: read an embedding through its teacher's word space (a departure from the paper).

Alignment puts a text's embedding where the teacher puts the LLM's response. The teacher embeds
single words too: every whole word of the backbone's vocabulary (one token each, one per
lower-cased spelling) is embedded once and kept on disk. A text's nearest words say what its
embedding holds; written as a request in the user's turn of the backbone's chat template
("Write about w1, w2, …."), the frozen LLM answers them: that answer is the decoded text.

Why not the paper's decoder (the soft prompt read by the LLM)? On every checkpoint measured here
it carries nothing input-specific: a text's own soft prompt reconstructs its answer no better
than another text's (docs/decodability.md). The soft-prompt decoder stays available
(`decode(..., via="soft-prompt")`).
"""
from __future__ import annotations

import re

import numpy as np

from .arrays import cached_array
from .backbone import cache_root
from .errors import InputError
from .inputs import prompt_ids
from .vectors import nearest, unit

WORD = re.compile(r"[A-Za-z]{3,}")  # a vocabulary token " word": letters only, 3 or more
REQUEST = "Write about {}."  # the user's turn the LLM answers; best of the frames screened (lab/reports/decoding.md)
WORDS_PER_TEXT = 10  # words per decoded request (10 vs 20 in lab/reports/decoding.md)


def vocabulary_words(tokenizer) -> tuple[list[str], list[int]]:
    """The backbone vocabulary's whole words, lower-cased and sorted, and for each the id of a single
    token spelling it after a space (the lower-case token where there is one)."""
    chosen: dict[str, int] = {}
    for token_id in range(len(tokenizer)):
        text = tokenizer.decode([token_id])
        if text.startswith(" ") and WORD.fullmatch(text[1:]):
            word = text[1:].lower()
            if word not in chosen or text[1:] == word:
                chosen[word] = token_id
    words = sorted(chosen)
    return words, [chosen[w] for w in words]


def word_vectors(teacher, words: list[str], show_progress_bar: bool = False) -> np.ndarray:
    """Unit teacher vectors of `words`, computed once per (teacher, word list) and cached on disk."""
    key = getattr(teacher, "cache_id", teacher.name)
    return cached_array(cache_root() / "word-vectors", teacher.name, [key, *words],
                        lambda: unit(teacher.embed(words, show_progress_bar=show_progress_bar)),
                        shape=(len(words), teacher.dim))


class WordLens:
    """Nearest vocabulary words of embeddings in the teacher's space, and the request they make."""

    def __init__(self, words: list[str], vectors: np.ndarray):
        if len(words) != len(vectors) or not words:
            raise InputError(f"the word lens needs one vector per word; got {len(words)} words, {len(vectors)} vectors")
        self.words, self.vectors = words, vectors

    @classmethod
    def for_model(cls, model, teacher) -> "WordLens":
        """The lens of a genembed model: its backbone's vocabulary in the space of its teacher (loaded)."""
        words, _ = vocabulary_words(model.backbone.tokenizer)
        if not words:
            raise InputError("the word lens needs whole-word tokens (' word') in the backbone's vocabulary; this "
                             "tokenizer has none: decode with via='soft-prompt'")
        if teacher.dim != model.config.embedding_dim:
            raise InputError(f"the word lens reads embeddings in the teacher's space, but this model's embeddings "
                             f"have {model.config.embedding_dim} dimensions and its teacher {model.config.teacher!r} "
                             f"{teacher.dim}: decode with via='soft-prompt'")
        return cls(words, word_vectors(teacher, words))

    def nearest(self, embeddings: np.ndarray, k: int = WORDS_PER_TEXT) -> list[list[tuple[str, float]]]:
        """For each embedding (row), its k nearest words and their cosine, nearest first."""
        return nearest(embeddings, self.vectors, self.words, k)

    def requests(self, embeddings: np.ndarray, k: int = WORDS_PER_TEXT) -> list[str]:
        """The user's turn each embedding decodes through."""
        return [REQUEST.format(", ".join(w for w, _ in row)) for row in self.nearest(embeddings, k)]


def request_ids(tokenizer, requests: list[str]) -> list[list[int]]:
    """The requests in the backbone's chat template, ready for the LLM to answer."""
    return prompt_ids(tokenizer, requests, max_text_tokens=512)
