"""What an LLM2Vec teacher spec names, resolved before any weight is read.

A spec is FIRST or FIRST+SECOND (optionally prefixed `llm2vec:`), as the `llm2vec` package and the
McGill-NLP/LLM2Vec-* repos lay a teacher out: FIRST is a model folder / hub id, or a PEFT LoRA adapter
folder (the `-mntp` one: adapter_config.json naming `base_model_name_or_path`, with config and tokenizer
beside it) to merge into its base; SECOND is a second adapter (the SimCSE one) merged on top. Pooling,
lengths and instruction skipping come from SECOND's (else FIRST's) llm2vec_config.json.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from ..backbone import ALIASES as BACKBONE_ALIASES, transformers_path
from .adapters import adapter_folder
from .folders import ADAPTER_CONFIG, TeacherError, hub_file, looks_local, read_json

LLM2VEC_PREFIX, LLM2VEC_CONFIG = "llm2vec:", "llm2vec_config.json"
POOLING_MODES = ("mean", "weighted_mean", "eos_token", "last_token", "bos_token")
DEFAULT_SETTINGS = {"pooling_mode": "mean", "max_length": 512, "doc_max_length": 400, "skip_instruction": True}


def is_llm2vec_spec(spec: str) -> bool:
    """Whether a teacher spec names an LLM2Vec model: the prefix `llm2vec:`, a `+`, a local folder holding
    adapter_config.json or llm2vec_config.json, or a hub id whose name starts with `LLM2Vec-` (not `LLM2Vec-Gen`)."""
    if spec.startswith(LLM2VEC_PREFIX) or "+" in spec:
        return True
    path = Path(spec).expanduser()
    if path.is_dir():
        return (path / ADAPTER_CONFIG).is_file() or (path / LLM2VEC_CONFIG).is_file()
    repo = spec.rstrip("/").rsplit("/", 1)[-1]
    return spec.count("/") == 1 and repo.startswith("LLM2Vec-") and not repo.startswith("LLM2Vec-Gen")


@dataclass
class LLM2VecParts:
    """The pieces an LLM2Vec spec resolves to."""

    base: str  # the base model: a folder or a hub id
    adapters: list[Path]  # merged into the base in this order: FIRST's (when FIRST is an adapter), SECOND
    tokenizer_from: str  # FIRST's folder where it holds a tokenizer, else the base
    base_name: str  # the name llm2vec chooses chat wrappers by
    settings: dict  # pooling_mode, max_length, doc_max_length, skip_instruction

    def digest(self) -> str:
        """A digest of the base's name and the adapters' files: a rebuilt teacher under the same path differs."""
        digest = hashlib.sha256(self.base.encode())
        for folder in self.adapters:
            for name in (ADAPTER_CONFIG, "adapter_model.safetensors", "adapter_model.bin"):
                if (folder / name).is_file():
                    digest.update(name.encode() + (folder / name).read_bytes())
        return digest.hexdigest()[:16]


def resolve(spec: str, pooling_mode: str | None = None, max_length: int | None = None) -> LLM2VecParts:
    """The parts of an LLM2Vec spec (pooling_mode / max_length override its llm2vec_config.json); TeacherError
    naming the part or file when one is missing or wrong."""
    body = spec[len(LLM2VEC_PREFIX):] if spec.startswith(LLM2VEC_PREFIX) else spec
    parts = body.split("+")
    if len(parts) > 2:
        raise TeacherError(f"teacher {spec!r}: expected FIRST or FIRST+SECOND, got {len(parts)} parts")
    if not parts[0].strip():
        raise TeacherError(f"teacher {spec!r}: the first part (model or adapter folder) is empty")
    first = parts[0].strip()
    second = parts[1].strip() if len(parts) == 2 else None
    if second is not None and not second:
        raise TeacherError(f"teacher {spec!r}: the second part (the adapter after '+') is empty")

    # FIRST: a model, or an adapter over the base its adapter_config.json names
    first_dir, first_adapter = _locate_first(first)
    if first_adapter is not None:
        base = _adapter_base(first_adapter)
    else:
        base = str(first_dir) if first_dir is not None else first
    second_dir = adapter_folder(second, f"teacher {spec!r}: the second part") if second is not None else None
    if second_dir is not None and not (second_dir / ADAPTER_CONFIG).is_file():
        raise TeacherError(f"teacher {spec!r}: the second part {str(second_dir)!r} is not a PEFT adapter "
                           f"(no {ADAPTER_CONFIG})")

    settings = _settings(second_dir if second is not None else first_dir)
    if pooling_mode is not None:
        settings["pooling_mode"] = pooling_mode
    if max_length is not None:
        settings["max_length"] = max_length
    if settings["pooling_mode"] not in POOLING_MODES:
        raise TeacherError(f"teacher {spec!r}: unknown pooling_mode {settings['pooling_mode']!r} "
                           f"(known: {', '.join(POOLING_MODES)})")
    has_tokenizer = first_dir is not None and any(
        (first_dir / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model"))
    return LLM2VecParts(base=base, adapters=[a for a in (first_adapter, second_dir) if a is not None],
                        tokenizer_from=str(first_dir) if has_tokenizer else base,
                        base_name=_base_name(first, first_dir, first_adapter, base), settings=settings)


def _locate_first(first: str) -> tuple[Path | None, Path | None]:
    """(FIRST's local folder or None for a hub model, the adapter folder when FIRST is an adapter)."""
    path = Path(first).expanduser()
    if path.is_dir():
        return path, (path if (path / ADAPTER_CONFIG).is_file() else None)
    if looks_local(first):
        raise TeacherError(f"teacher part {first!r} is not a folder")
    if hub_file(first, ADAPTER_CONFIG, "teacher part") is not None:
        folder = adapter_folder(first, "teacher part")
        return folder, folder
    return None, None


def _adapter_base(adapter: Path) -> str:
    """The base model an adapter names: a backbone genembed ships (by its alias), a folder (relative names are
    read beside the adapter first) or a hub id."""
    config_path = adapter / ADAPTER_CONFIG
    name = read_json(config_path).get("base_model_name_or_path")
    if not isinstance(name, str) or not name.strip():
        raise TeacherError(f"{config_path}: names no base_model_name_or_path")
    if name in BACKBONE_ALIASES:  # a base genembed ships (an adapter built over it names it so)
        return transformers_path(name)
    beside = (adapter / name).resolve()
    if not Path(name).expanduser().is_absolute() and beside.is_dir():
        return str(beside)
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path)
    if looks_local(name):
        raise TeacherError(f"{config_path}: its base model {name!r} is not a folder")
    return name


def _settings(folder: Path | None) -> dict:
    settings = dict(DEFAULT_SETTINGS)
    if folder is not None and (folder / LLM2VEC_CONFIG).is_file():
        path = folder / LLM2VEC_CONFIG
        data = read_json(path)
        for key in settings:
            if key in data:
                settings[key] = data[key]
        if settings["pooling_mode"] not in POOLING_MODES:
            raise TeacherError(f"{path}: unknown pooling_mode {settings['pooling_mode']!r} "
                               f"(known: {', '.join(POOLING_MODES)})")
        for key in ("max_length", "doc_max_length"):
            if not isinstance(settings[key], int) or settings[key] < 1:
                raise TeacherError(f"{path}: {key} must be a positive integer, got {settings[key]!r}")
    return settings


def _base_name(first: str, first_dir: Path | None, first_adapter: Path | None, base: str) -> str:
    """The name llm2vec chooses chat wrappers by: the _name_or_path in FIRST's config.json when FIRST is a local
    folder with one, else the base model's name."""
    if first_dir is not None and (first_dir / "config.json").is_file():
        return str(read_json(first_dir / "config.json").get("_name_or_path", ""))
    return base if first_adapter is not None else first
