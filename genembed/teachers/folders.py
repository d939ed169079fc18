"""Where a teacher's files are: a local folder or a hub repo, and the JSON files it is configured by, read
with errors that name the file."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import InputError

ADAPTER_CONFIG = "adapter_config.json"


class TeacherError(InputError):
    """A teacher spec, folder or file genembed cannot use (the message names which and why)."""


def looks_local(part: str) -> bool:
    return part.startswith((".", "/", "~")) or part.count("/") > 1 or Path(part).expanduser().exists()


def hub_file(repo: str, filename: str, what: str) -> Path | None:
    """A file of a hub repo (None when the repo has no such file); TeacherError when the repo is unreachable."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    try:
        return Path(hf_hub_download(repo, filename))
    except Exception as error:  # offline (LocalEntryNotFoundError), unknown repo, no access
        if isinstance(error, EntryNotFoundError) and not isinstance(error, LocalEntryNotFoundError):
            return None  # the repo exists, the file does not
        raise TeacherError(f"{what} {repo!r} is not a local folder, and the hub repo cannot be read "
                           f"({type(error).__name__})") from None


def read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise TeacherError(f"{path}: cannot be read as JSON ({error})") from None
    if not isinstance(data, dict):
        raise TeacherError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data
