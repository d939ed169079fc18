"""A checkpoint is a folder: `config.json` (how to rebuild the model around its backbone) and
`model.safetensors` (only the trained tensors: special tokens, recon, align — megabytes).

Writes are atomic (a temporary folder renamed into place), so a kill never leaves a half
checkpoint. Loading validates everything and names the problem when something does not fit.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from .atomic import file_digest, recover_folder, write_folder
from .backbone import Backbone, load_backbone
from .errors import InputError
from .jsonl import read_json_object
from .model import GenEmbed, GenEmbedConfig
from .query_lens import FILE as QUERY_LENS_FILE, QueryLens
from .tensorfile import save_tensors

CONFIG_NAME, WEIGHTS_NAME = "config.json", "model.safetensors"
DEFAULT_CHECKPOINT = Path(__file__).parent / "default"
# the checkpoints that ship inside the package, by the name `load` takes, and the script that builds each
BUNDLED = {"default": (DEFAULT_CHECKPOINT, "scripts/train_default.sh"),
           "self-supervised": (Path(__file__).parent / "self-supervised", "scripts/train_self_supervised.sh")}


def bundled_name(folder: Path) -> str | None:
    """The name a bundled checkpoint folder goes by ("default", "self-supervised"), or None."""
    return next((name for name, (path, _) in BUNDLED.items() if Path(folder) == path), None)


class CheckpointError(InputError):
    """A checkpoint that cannot be loaded, with the reason."""


def save_checkpoint(model: GenEmbed, folder: str | Path, extra: dict[str, "callable"] | None = None) -> Path:
    """Write the model's trained tensors, its config and its query lens (if any) into `folder`, atomically;
    extra: more files, name -> writer(path) (a training run's resume state)."""
    tensors = {k: v.detach().float().cpu().contiguous() for k, v in model.state_dict().items()}
    written = {}

    def weights(path: Path) -> None:
        save_tensors(tensors, path, metadata={"format": "pt", "library": "genembed"})
        written["sha256"] = file_digest(path)

    def config(path: Path) -> None:  # after the weights: it records their checksum, checked on load
        path.write_text(json.dumps({**model.config.to_dict(), CHECKSUM_KEY: written["sha256"]}, indent=2,
                                   sort_keys=True) + "\n")

    lens = {QUERY_LENS_FILE: model.query_lens.write} if model.query_lens is not None else {}
    return write_folder(folder, {WEIGHTS_NAME: weights, CONFIG_NAME: config, **lens, **(extra or {})})


CHECKSUM_KEY = "weights_sha256"  # in config.json beside the model's settings


def _read_config(folder: str | Path) -> tuple[GenEmbedConfig, str | None]:
    """(config, checksum of the weights it was saved with, None for checkpoints older than it)."""
    path = Path(folder) / CONFIG_NAME
    if not Path(folder).is_dir():
        raise CheckpointError(f"checkpoint folder not found: {folder}")
    if not path.exists():
        raise CheckpointError(f"{folder} is not a genembed checkpoint: it has no {CONFIG_NAME}")
    raw = read_json_object(path, CheckpointError)
    checksum = raw.pop(CHECKSUM_KEY, None)
    known = set(GenEmbedConfig.__dataclass_fields__)
    unknown = sorted(set(raw) - known)
    if unknown:
        raise CheckpointError(f"{path} has settings this genembed does not know ({', '.join(unknown)}): written by "
                              f"another version of genembed")
    return GenEmbedConfig(**raw), checksum


WEIGHTS_TOLERANCE = 5e-3  # relative distance of the weight samples: bf16 rounding is ~1e-3, any fine-tune far more


def check_backbone(config: GenEmbedConfig, backbone: Backbone, where: str) -> None:
    """The backbone must be the one the checkpoint was trained on: same shapes, and (for
    checkpoints that recorded one) the same weights sample up to dtype rounding."""
    expected, actual = dict(config.backbone_signature), backbone.signature()
    sample, sample_now = expected.pop("weights_sample", None), actual.pop("weights_sample")
    diffs = [f"{k}: checkpoint {expected[k]!r} vs backbone {actual.get(k)!r}"
             for k in expected if expected[k] != actual.get(k)]
    if not diffs and sample is not None:
        a, b = torch.tensor(sample_now), torch.tensor(sample)
        distance = float((a - b).norm() / b.norm().clamp_min(1e-12)) if a.shape == b.shape else float("inf")
        if distance > WEIGHTS_TOLERANCE:
            diffs.append(f"same shapes but other weights: a sample of them differs by {distance:.1%} "
                         f"(another checkpoint or fine-tune of the architecture, e.g. base vs instruct, "
                         f"or another quantisation)")
    if diffs:
        raise CheckpointError(
            f"{where} was trained on backbone '{config.backbone}', which does not match "
            f"'{backbone.name}' ({'; '.join(diffs)})")


def load_checkpoint(folder: str | Path | None = None, backbone: str | Backbone | None = None,
                    dtype: str = "float32", device: str | None = None) -> GenEmbed:
    """Rebuild a GenEmbed from a checkpoint folder (None: the bundled default).

    backbone: override the recorded backbone (a name or a loaded Backbone) — e.g. a local
    copy of the same model; it must match the recorded signature.
    """
    folder = Path(folder) if folder is not None else DEFAULT_CHECKPOINT
    recover_folder(folder)
    config, checksum = _read_config(folder)
    weights = folder / WEIGHTS_NAME
    if not weights.exists():
        raise CheckpointError(f"{folder} has no {WEIGHTS_NAME}")
    if checksum is not None and file_digest(weights) != checksum:
        raise CheckpointError(f"{weights} is corrupt: its SHA-256 differs from the one {CONFIG_NAME} recorded "
                              f"when it was saved (truncated or altered)")
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{weights} is corrupt or not a safetensors file ({e})") from None
    if not isinstance(backbone, Backbone):
        backbone = load_backbone(backbone or config.backbone, dtype=dtype, device=device)
    check_backbone(config, backbone, str(folder))
    model = GenEmbed(config, backbone)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in tensors.items()}
    if expected != found:
        missing = sorted(set(expected) - set(found))
        wrong = sorted(k for k in set(expected) & set(found) if expected[k] != found[k])
        raise CheckpointError(f"{weights} does not fit its config: missing {missing}, "
                              f"wrong shapes {[(k, found[k], expected[k]) for k in wrong]}, "
                              f"unexpected {sorted(set(found) - set(expected))}")
    model.load_state_dict(tensors)
    model.eval()
    model.query_lens = QueryLens.load(folder, backbone.tokenizer)
    return model


def model_fingerprint(model: GenEmbed) -> str:
    """sha1 of a model's config and trained tensors: what a faiss index (index.py) and an evaluation score
    (eval/methods.py) record of the model that made them, so vectors or scores of another model are never
    taken for its own."""
    digest = hashlib.sha1(json.dumps(model.config.to_dict(), sort_keys=True).encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()
