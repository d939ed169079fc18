"""A name → a ready model: what `genembed.load` and every command's --model take.

* None or "default": the bundled default checkpoint (alignment to MiniLM); "self-supervised": the
  bundled checkpoint whose teacher is the backbone itself (no labelled data anywhere);
* a genembed checkpoint folder (config.json + model.safetensors);
* an official llm2vec-gen folder (run_config.yml + encoder/; official.py), e.g. a published
  McGill-NLP/LLM2Vec-Gen-* model downloaded once;
* a hub id ("owner/name") of either, fetched with huggingface_hub when the machine is online.
"""
from __future__ import annotations

import re
from pathlib import Path

from .checkpoint import BUNDLED, CONFIG_NAME, CheckpointError, load_checkpoint
from .official import is_official, read_official

HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def resolve(name) -> Path:
    """The local folder a model name stands for (a hub id is downloaded)."""
    if name is None or str(name) in BUNDLED:
        key = str(name or "default")
        folder, script = BUNDLED[key]
        if not (folder / CONFIG_NAME).exists():
            raise CheckpointError(f"the bundled '{key}' checkpoint is not in this installation ({folder} has no "
                                  f"{CONFIG_NAME}); `bash {script}` builds it from a clone of the repository")
        return folder
    path = Path(name).expanduser()
    if path.exists() or not HUB_ID.fullmatch(str(name)):
        return path
    from huggingface_hub import snapshot_download  # only for a hub id: online users

    try:
        return Path(snapshot_download(str(name)))
    except Exception as e:  # noqa: BLE001  (offline, unknown repo, no access: one message)
        raise CheckpointError(f"model '{name}' is not a local folder, and fetching it from the Hugging Face hub failed "
                              f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None


def load_model(name=None, backbone=None, dtype: str = "float32", device: str | None = None, backend: str = "torch",
               num_threads: int | None = None):
    """A GenEmbed from `name` (see the module's docstring); backbone: a local copy of its backbone;
    backend: how its inference runs (backends.py); num_threads: torch's threads while it decodes
    (backends.threads; None: as many as the other processes leave cores free)."""
    from .backends import check_name, check_threads

    check_name(backend)  # before anything loads
    check_threads(num_threads)
    folder = resolve(name)
    if is_official(folder) and not (folder / CONFIG_NAME).exists():
        model = read_official(folder, backbone=backbone, dtype=dtype, device=device)
    else:
        model = load_checkpoint(folder, backbone=backbone, dtype=dtype, device=device)
    model.num_threads = num_threads
    return model.set_backend(backend)
