"""Files and folders genembed rewrites are replaced whole: written beside the target, forced to
disk, then renamed over it, so a kill at any moment leaves either the old copy or the new one,
never a half-written one."""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
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
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_folder(folder: str | Path, files: dict[str, Callable[[Path], None]]) -> Path:
    """Create `folder` holding files[name](path) for each name, replacing any old one.

    The new folder is written and forced to disk beside the old; then the old is renamed aside and
    the new one into place. A kill between those two renames leaves no `folder` for a moment, but
    the old copy is intact aside and `recover_folder` (called by every reader) puts it back."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    recover_folder(folder)
    aside = _aside(folder)
    shutil.rmtree(aside, ignore_errors=True)  # a leftover of an earlier swap that completed
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        for name, write in files.items():
            write(tmp / name)
            os.chmod(tmp / name, 0o644)
            with open(tmp / name, "rb+") as f:
                os.fsync(f.fileno())
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; a checkpoint is meant to be shared
        sync_folder(tmp)
        if folder.exists():
            os.replace(folder, aside)
        os.replace(tmp, folder)
        sync_folder(folder.parent)
        shutil.rmtree(aside, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def _aside(folder: Path) -> Path:
    return folder.parent / f".{folder.name}.old"


def recover_folder(folder: str | Path) -> None:
    """If a write_folder was killed between its two renames, put the previous copy back in place."""
    folder = Path(folder)
    if not folder.exists() and _aside(folder).exists():
        os.replace(_aside(folder), folder)
