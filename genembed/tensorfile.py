"""Writing safetensors files whose bytes depend only on what they hold.

safetensors keeps a file's metadata in a hash map with a random seed, so two writes of the same tensors
and the same metadata can list the metadata keys in another order, even within one process. The file is
then another file: another checksum for the same weights, and a rebuild cannot be compared byte for byte.
`save_tensors` writes the header with its metadata keys sorted; everything else is the library's own output.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

import torch
from safetensors.torch import save

METADATA_KEY = "__metadata__"


def tensor_bytes(tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> bytes:
    """The safetensors file of `tensors` and `metadata`, its metadata keys in sorted order."""
    data = save(tensors, metadata=metadata)
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])  # (a dict keeps the library's order of the tensor entries)
    if METADATA_KEY in header:
        header[METADATA_KEY] = dict(sorted(header[METADATA_KEY].items()))
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the format pads its header with spaces to 8 bytes
    return struct.pack("<Q", len(text)) + text + data[8 + length:]


def save_tensors(tensors: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str] | None = None) -> None:
    """Write `tensors` (and string `metadata`) to `path` as safetensors, the same bytes every time."""
    Path(path).write_bytes(tensor_bytes(tensors, metadata))
