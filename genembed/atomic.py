"""Files genembed rewrites are replaced whole: written beside the target, forced to disk, then
renamed over it, so a kill at any moment leaves either the old file or the new one, never a
half-written one."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable


def replace_file(path: str | Path, write: Callable[[Path], None]) -> Path:
    """write(temporary path), fsync it, rename it onto `path`, fsync the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    sync_folder(path.parent)
    return path


def write_text(path: str | Path, text: str) -> Path:
    return replace_file(path, lambda p: p.write_text(text, encoding="utf-8"))


def sync_folder(folder: str | Path) -> None:
    """Make a rename inside `folder` durable (where the platform allows opening a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes, read in blocks (checkpoint checksums, the responses file a run used)."""
    import hashlib

    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
