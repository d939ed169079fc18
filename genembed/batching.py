"""Texts → padded batches for a forward pass, streamed: texts are read and tokenized one window of
WINDOW batches at a time and sorted longest first inside it, so each batch pads little while a
corpus streamed from a file (reader.TextFile) never sits in memory whole. Inside a window the sorted
rows are cut into batches of at most batch_size rows where that costs least (plan_batches): one long
text no longer pads 31 short ones to its length. Row order is restored by the indices each batch
carries."""
from __future__ import annotations

import sys
from typing import Callable

from tqdm.auto import tqdm

from .errors import InputError, InputTypeError
from .inputs import pad
from .reader import chunked

WINDOW = 64  # batches read and length-sorted together
# what one more forward call costs, in padded token positions: a split pays off when it saves more padding
# than this (per-call overhead and smaller matrix products): chosen by experiments/batch_plan.py on
# training-split queries, the best of 0 / 64 / 256 / 1024 / no split over torch, onnx and openvino bf16
# together (docs/backends.md)
CALL_COST = 256


def plan_batches(lengths: list[int], batch_size: int, call_cost: int = CALL_COST) -> list[int]:
    """Where to cut rows sorted longest first into batches of at most batch_size rows: the start of each
    batch, chosen to minimise the sum over batches of rows × the batch's longest row + call_cost (dynamic
    programming over the sorted order, O(rows × batch_size); of equal costs, fuller batches come first)."""
    n = len(lengths)
    best, start = [0] + [float("inf")] * n, [0] * (n + 1)  # best[j]: cost of the first j rows
    for j in range(1, n + 1):
        for i in range(j - 1, max(0, j - batch_size) - 1, -1):  # the last batch: rows i..j-1, row i its longest
            cost = best[i] + (j - i) * lengths[i] + call_cost
            if cost < best[j]:
                best[j], start[j] = cost, i
    starts, j = [], n
    while j > 0:
        starts.append(start[j])
        j = start[j]
    return starts[::-1]


def check_texts(texts, offset: int, desc: str) -> None:
    """Every item must be a string; the first that is not is named by its position."""
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise InputTypeError(f"{desc}() expects strings; item {offset + bad} is {type(texts[bad]).__name__}")


def as_sized(texts):
    """(a sized sequence of texts, whether one string was given): a string becomes a list of one, a
    tuple or generator a list; a sized iterable (a list, a TextFile) stays as it is."""
    if isinstance(texts, str):
        return [texts], True
    if isinstance(texts, tuple) or not hasattr(texts, "__len__"):
        return list(texts), False
    return texts, False


def windows(texts, tokenize: Callable[[list[str]], list[list[int]]], pad_id: int, batch_size: int,
            show_progress_bar: bool | None, desc: str):
    """Yield (offset, n, batches) per window of rows offset..offset+n; `batches` yields (indices within
    the window, ids, mask) with left-padded ids, longest rows first."""
    if len(texts) == 0:
        raise InputError(f"{desc}() got an empty list of texts: pass at least one string")
    if isinstance(texts, list):  # checked before any work; a streamed source checks itself
        check_texts(texts, 0, desc)
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    if show_progress_bar is None:
        show_progress_bar = len(texts) > 4 * batch_size and sys.stderr.isatty()

    def batches(rows, bar):
        order = sorted(range(len(rows)), key=lambda i: -len(rows[i]))
        starts = plan_batches([len(rows[i]) for i in order], batch_size, CALL_COST)
        for start, end in zip(starts, starts[1:] + [len(order)]):
            idx = order[start:end]
            yield (idx, *pad([rows[i] for i in idx], pad_id, side="left"))
            bar.update(len(idx))

    with tqdm(total=len(texts), desc=desc, disable=not show_progress_bar) as bar:
        offset = 0
        for chunk in chunked(texts, batch_size * WINDOW):
            check_texts(chunk, offset, desc)
            yield offset, len(chunk), batches(tokenize(chunk), bar)
            offset += len(chunk)


def batches(texts, tokenize, pad_id: int, batch_size: int, show_progress_bar: bool | None, desc: str):
    """(row indices, ids, mask) over all texts (see windows)."""
    for offset, _, window in windows(texts, tokenize, pad_id, batch_size, show_progress_bar, desc):
        for idx, ids, mask in window:
            yield [offset + i for i in idx], ids, mask
