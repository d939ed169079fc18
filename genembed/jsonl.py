"""Append-only JSONL that survives a kill: a torn last line is cut off when the file is reopened."""
from __future__ import annotations

import json
import os
from pathlib import Path


def read_rows(path: str | Path, repair: bool = False) -> list[dict]:
    """Every complete row. With repair=True a torn tail (from a kill mid-write) is truncated away."""
    path = Path(path)
    if not path.exists():
        return []
    rows, good_bytes = [], 0
    with open(path, "rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                break
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break
            good_bytes += len(line)
    if repair and good_bytes != path.stat().st_size:
        with open(path, "r+b") as f:
            f.truncate(good_bytes)
    return rows


def append_rows(path: str | Path, rows: list[dict]) -> None:
    """Append rows and force them to disk, so a later kill cannot lose them."""
    if not rows:
        return
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
    with open(path, "ab") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
