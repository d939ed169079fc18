"""The alignment targets training reads: a teacher's embeddings of the responses (and queries), computed once
and kept as .npy, keyed by the teacher and the texts."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..arrays import cached_array
from ..errors import InputError
from ..recipe import TARGETS
from ..vectors import unit_mean


def cached_targets(teacher, texts: list[str], cache_dir: str | Path, show_progress_bar: bool = True) -> np.ndarray:
    """teacher.embed(texts) (the alignment targets of training: the responses), computed once and kept as
    .npy under cache_dir, keyed by the teacher (and settings that change its vectors) and the texts."""
    key = getattr(teacher, "cache_id", teacher.name)
    return cached_array(cache_dir, f"targets-{teacher.name}", [key, *texts],
                        lambda: teacher.embed(texts, show_progress_bar=show_progress_bar),
                        shape=(len(texts), teacher.dim))


def alignment_targets(teacher, queries: list[str], responses: list[str], kind: str, cache_dir: str | Path,
                      show_progress_bar: bool = True) -> np.ndarray:
    """What training aligns the embedding to (TrainConfig.target): "response", the teacher's embedding of
    each response; "query+response", the unit mean of its unit embeddings of the query and of the response;
    "query", its embedding of the query."""
    if kind not in TARGETS:
        raise InputError(f"target must be one of {TARGETS}, got {kind!r}")
    if kind == "query":
        return cached_targets(teacher, queries, cache_dir, show_progress_bar)
    targets = cached_targets(teacher, responses, cache_dir, show_progress_bar)
    if kind == "response":
        return targets
    return unit_mean(targets, cached_targets(teacher, queries, cache_dir, show_progress_bar))
