"""Texts from a file, streamed: a corpus larger than memory is never held as a list.

Row i of the output is line i of the file, in both formats, so a row's number finds its line:

* a text file: each line is a text, a blank line too (the empty text; that is how a text file
  writes one, and rows never shift);
* a `.jsonl` file: each line is a JSON object and its `field` is the text. A blank line is an error
  naming the file and line, not a row: the empty text is written `{"text": ""}`, so a blank line is
  no text at all, and skipping it would shift every later row off its line (and guessing "" would
  hide a damaged file).

Only "\\n" ends a line ("\\r\\n" too); a file is read as bytes and decoded line by line, so a bad
byte is an error naming its line.
"""
from __future__ import annotations

import json
from pathlib import Path

from .errors import InputError
from .jsonl import JsonlError, numbered_rows, string_field


class TextFile:
    """The texts of one file as a sized iterable: `len()` reads the file once (validating every
    row, so an error comes before any work starts) and iteration reads it again; neither keeps
    more than one line in memory."""

    def __init__(self, path: str | Path, field: str = "text"):
        self.path = Path(path)
        self.field = field
        if self.path.is_dir():
            raise InputError(f"{self.path} is a folder; a file of texts is expected")
        if not self.path.is_file():
            raise InputError(f"input file not found: {self.path}")
        self._count: int | None = None

    def __len__(self) -> int:
        if self._count is None:
            self._count = sum(1 for _ in self)
        return self._count

    def __iter__(self):
        if self.path.suffix == ".jsonl":
            yield from self._jsonl_texts()
        else:
            yield from self._lines()

    def _jsonl_texts(self):
        for n, row in numbered_rows(self.path, blank_lines=True):
            if row is None:
                raise JsonlError(f"{self.path}:{n}: blank line (row i is line i of the file: write an empty text as "
                                 f"{json.dumps({self.field: ''})}, or remove the line)")
            yield string_field(self.path, n, row, self.field)

    def _lines(self):
        with open(self.path, "rb") as f:  # binary iteration splits at b"\n" only, never at a lone "\r"
            for n, raw in enumerate(f, 1):
                line = raw.removesuffix(b"\n").removesuffix(b"\r")
                try:
                    yield line.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise InputError(f"{self.path}:{n} is not UTF-8 text (byte {e.start} of the line)") from None


def chunked(items, size: int):
    """Lists of up to `size` consecutive items of any iterable, reading it once (a corpus streamed
    from a file is never held whole)."""
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
