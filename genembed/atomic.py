"""Files and folders genembed rewrites are replaced whole: written beside the target, forced to
disk, then renamed over it, so a kill at any moment leaves either the old copy or the new one,
never a half-written one. A folder or file a long job writes into has one writer at a time (writer_lock)."""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from .errors import InputError


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


@contextmanager
def writer_lock(lock_file: str | Path, target: str | Path, job: str) -> Iterator[None]:
    """Hold `target` (a folder or file a long job writes) for one writer while the block runs: an exclusive
    lock on `lock_file`, which the system drops when the process ends, a kill -9 included. Where another
    process holds it (a second run started on the same target, or the workers of a launcher that was killed
    alone), an InputError names the target. Not POSIX (no fcntl): no lock."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(lock_file, "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(f"{target} is in use by another {job} (a running process holds {lock_file}; after a "
                             f"launcher is killed its worker processes may still run): stop it first, or choose "
                             f"another output") from None
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def folder_lock(folder: str | Path, job: str):
    """writer_lock for a folder: its lock file is folder/.lock."""
    return writer_lock(Path(folder) / ".lock", folder, job)


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
