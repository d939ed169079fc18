"""JSONL rows, read strictly and appended so that a kill loses nothing.

Reading: every line is a JSON object (blank lines are skipped, unless the reader asks to see them,
as reader.TextFile does: its row i is line i); a line that is not one is an error naming the file
and line, never a silent stop. A last line without "\n" that parses is a row. Only a file genembed
itself appends to (`repair=True`) may have a torn last line (a kill mid-write): that tail alone is
cut away, nothing before it.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from .errors import InputError


class JsonlError(InputError):
    """A JSONL file that cannot be read as rows; the message names the file and line."""


def read_rows(path: str | Path, repair: bool = False) -> list[dict]:
    """Every row of a JSONL file ([] when it does not exist). repair=True: a torn, unparsable last
    line without "\\n" (a kill while appending) is truncated away instead of being an error."""
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    lines = data.split(b"\n")
    torn = lines.pop()  # what follows the last "\n": b"" for a file that ends properly
    rows = []
    for number, line in enumerate(lines, 1):
        if line.strip():
            rows.append(_parse(path, number, line))
    if torn.strip():
        try:
            rows.append(_parse(path, len(lines) + 1, torn))
            if repair:  # a complete row that lacks its newline: add it, so the next append starts a line
                with open(path, "ab") as f:
                    f.write(b"\n")
        except JsonlError:
            if not repair:
                raise
            with open(path, "r+b") as f:
                f.truncate(len(data) - len(torn))
    return rows


def numbered_rows(path: str | Path, blank_lines: bool = False):
    """(line number, row) for every row of a JSONL file someone else wrote: strict, no repair.
    blank_lines=True: a blank line is yielded too, as (line number, None), instead of skipped."""
    path = Path(path)
    with open(path, "rb") as f:  # line by line: a large file is never read whole
        for number, line in enumerate(f, 1):
            if line.strip():
                yield number, _parse(path, number, line)
            elif blank_lines:
                yield number, None


def _parse(path: Path, number: int, line: bytes) -> dict:
    try:
        row = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        raise JsonlError(f"{path}:{number} is not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise JsonlError(f"{path}:{number} is not valid JSON ({e.msg})") from None
    if not isinstance(row, dict):
        raise JsonlError(f"{path}:{number} is a JSON {type(row).__name__}, not an object")
    return row


def append_rows(path: str | Path, rows: list[dict]) -> None:
    """Append rows and force them to disk, so a later kill cannot lose them."""
    if not rows:
        return
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
    with open(path, "ab") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def string_field(path: str | Path, number: int, row: dict, key: str, integers: bool = False):
    """row[key] of line `number` of a JSONL file, which must be a string (or, with integers=True, an
    integer); anything else is an error naming the file, the line and what was found."""
    if key not in row:
        raise JsonlError(f"{path}:{number} has no '{key}' key (keys: {sorted(row)})")
    value = row[key]
    if isinstance(value, str) or (integers and isinstance(value, int) and not isinstance(value, bool)):
        return value
    kind = "a string or integer" if integers else "a string"
    raise JsonlError(f"{path}:{number}: '{key}' is {json.dumps(value)[:40]}, not {kind}")


def read_json_object(path: str | Path, error: type = JsonlError) -> dict:
    """A JSON file holding one object (a config, a manifest); anything else raises `error` naming the file."""
    path = Path(path)
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise error(f"{path} is corrupt: not valid JSON ({e})") from None
    if not isinstance(value, dict):
        raise error(f"{path} is corrupt: not a JSON object")
    return value
