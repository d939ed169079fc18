"""Arrays on disk: .npy results cached under a digest of what made them, and .npy files written row
block by row block (a corpus's vectors never sit in memory whole). Both write atomically."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

import numpy as np

from .atomic import replace_file


def slug(name: str) -> str:
    """A name as a piece of a file name (its last 40 characters, non-alphanumerics as '-')."""
    return "".join(c if c.isalnum() else "-" for c in str(name))[-40:]


def cached_array(folder: str | Path, name: str, key: list[str], compute: Callable[[], np.ndarray],
                 shape: tuple | None = None) -> np.ndarray:
    """compute(), kept as FOLDER/NAME-<digest of key>.npy and read back on later calls (a cached file of
    another shape than `shape` is computed again). A folder that cannot be written costs the next call
    the same work, nothing else."""
    digest = hashlib.sha1("\x00".join(key).encode("utf-8")).hexdigest()[:16]
    path = Path(folder) / f"{slug(name)}-{digest}.npy"
    if path.exists():
        cached = np.load(path)
        if shape is None or cached.shape == tuple(shape):
            return cached
    array = compute()

    def save(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # (a path not ending in .npy would get the suffix added)
            np.save(f, array)

    try:
        replace_file(path, save)
    except OSError:
        pass
    return array


class NpyWriter:
    """A float32 [rows, dim] .npy file filled block by block in row order, under a temporary name renamed
    into place by close(): a failed run leaves an older file intact. A context manager; on an error the
    partial file is removed."""

    def __init__(self, path: str | Path, shape: tuple[int, int]):
        self.path, self.shape = Path(path), shape
        self.partial = self.path.with_name(self.path.name + ".partial")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.sink = open(self.partial, "wb")
        np.lib.format.write_array_header_1_0(self.sink, {"descr": "<f4", "fortran_order": False, "shape": shape})

    def write(self, block: np.ndarray) -> None:
        self.sink.write(np.ascontiguousarray(block, dtype="<f4").tobytes())

    def __enter__(self) -> "NpyWriter":
        return self

    def __exit__(self, error, *_) -> None:
        self.sink.close()
        if error is None:
            self.partial.replace(self.path)
        self.partial.unlink(missing_ok=True)

    def result(self) -> np.ndarray:
        """The finished file, memory-mapped read-only."""
        return np.load(self.path, mmap_mode="r")
