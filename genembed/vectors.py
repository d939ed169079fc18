"""Cosine similarity and top-k over rows of vectors: the one nearest-neighbour search (numpy, exact)
that the lenses, the retrieval metrics and inspection share (faiss indexes are index.py's)."""
from __future__ import annotations

import numpy as np
from .errors import InputError


def unit(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (a zero row stays zero), float32."""
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def unit_mean(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row by row, the unit vector halfway between the directions of a and b, whatever their lengths:
    the mixture that the fused baseline encodes with and that `--target query+response` trains toward."""
    return unit(unit(a) + unit(b))


def top_k(queries: np.ndarray, vectors: np.ndarray, k: int, unit_vectors: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(indices, cosines), each [n_queries, min(k, n_vectors)]: every query row's nearest `vectors` rows
    by cosine, nearest first. unit_vectors: the vectors are stored at unit length (a lens's bank): used
    as they are."""
    if k < 1:
        raise InputError(f"k must be >= 1, got {k}")
    scores = unit(queries) @ (np.asarray(vectors, dtype=np.float32) if unit_vectors else unit(vectors)).T
    k = min(k, scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
    top = np.take_along_axis(top, order, axis=1)
    return top, np.take_along_axis(scores, top, axis=1)


def nearest(queries: np.ndarray, unit_vectors: np.ndarray, labels: list, k: int) -> list[list[tuple[object, float]]]:
    """For each query row, its k nearest unit vectors as (label, cosine), nearest first."""
    idx, cos = top_k(queries, unit_vectors, k, unit_vectors=True)
    return [[(labels[i], float(c)) for i, c in zip(row_i, row_c)] for row_i, row_c in zip(idx, cos)]
