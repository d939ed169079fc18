"""The ONNX export of a frozen backbone: written once, kept in the genembed cache, checked on every read.

Only the backbone is exported, never what a checkpoint trains: the special tokens enter as input
embeddings and `recon` / `align` stay in torch (two small matrices). So one export serves every
checkpoint around the same backbone. It is keyed by a digest of the backbone's weights and by the
onnxruntime version, so environments with different onnxruntime versions sharing one cache each keep
their own export instead of rebuilding each other's:

    <cache>/onnx/<weights digest>-ort<onnxruntime version>/
        manifest.json      format, versions, the weights digest and every file's size and SHA-256
        body.onnx(+.data)  input embeddings, an additive attention mask, positions and the past
                           keys/values of every layer → last-layer states and the new keys/values
        head.onnx(+.data)  the language-model head: last state → logits (decoding)

Both in float32: in a screen of onnxruntime's 8-bit weight variants (experiments/backend_screen.py,
docs/backends.md) every variant changed greedy decodes, and none was faster.

A folder is written whole (atomic.write_folder) and read only after its manifest matches this
backbone, this format and the installed onnxruntime, and every file matches its recorded size and
digest; any mismatch is rebuilt, with one line saying which.
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import warnings
import weakref
from pathlib import Path

import torch
from torch import nn

from .atomic import file_digest, recover_folder, write_folder
from .backbone import Backbone, cache_keyword, cache_root, kv_cache, kv_tensors
from .errors import InputError, MissingDependency

FORMAT = 1
FILES = ("body.onnx", "body.onnx.data", "head.onnx", "head.onnx.data")
MISSING_EXTRA = "the onnx backend needs onnxruntime and onnx: pip install 'genembed[onnx]'"


def require_onnx():
    """(onnx, onnxruntime), or an ImportError that names the extra that installs them."""
    try:
        import onnx
        import onnxruntime
    except ImportError as e:
        raise MissingDependency(f"{MISSING_EXTRA} ({e})") from None
    return onnx, onnxruntime


_digests: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def weights_digest(backbone: Backbone) -> str:
    """SHA-256 over the backbone's tensors (names, dtypes, shapes, bytes), remembered per loaded model
    (a frozen backbone does not change; about a second for 135M parameters)."""
    if backbone.model not in _digests:
        h = hashlib.sha256()
        for name, t in sorted(backbone.model.state_dict().items()):
            t = t.detach().cpu().contiguous()
            h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        _digests[backbone.model] = h.hexdigest()
    return _digests[backbone.model]


def export_folder(backbone: Backbone) -> Path:
    """Where this backbone's export lives for the installed onnxruntime (a version's characters other than
    letters, digits, '.', '-' and '_' become '_')."""
    _, ort = require_onnx()
    version = re.sub(r"[^A-Za-z0-9._-]", "_", ort.__version__)
    return cache_root() / "onnx" / f"{weights_digest(backbone)[:32]}-ort{version}"


def ensure_export(backbone: Backbone) -> Path:
    """The backbone's export folder, built first when missing or unusable (the reason is printed)."""
    folder = export_folder(backbone)
    recover_folder(folder)
    problem = check_export(folder, backbone)
    if problem is None:
        return folder
    if folder.exists():
        warnings.warn(f"rebuilding the ONNX export in {folder}: {problem}")
    print(f"exporting the backbone to ONNX once into {folder} (later loads read it from there)", flush=True)
    return write_export(folder, backbone)


def check_export(folder: Path, backbone: Backbone) -> str | None:
    """None if the folder is a usable export of this backbone, else what is wrong with it."""
    _, ort = require_onnx()
    manifest_path = folder / "manifest.json"
    if not manifest_path.exists():
        return "no export yet" if not folder.exists() else "manifest.json is missing"
    try:
        manifest = json.loads(manifest_path.read_text())
        files = manifest["files"]
    except (ValueError, KeyError, TypeError) as e:
        return f"manifest.json is corrupt ({e})"
    if manifest.get("format") != FORMAT:
        return f"it is export format {manifest.get('format')}, this genembed reads format {FORMAT}"
    if manifest.get("onnxruntime") != ort.__version__:
        return f"it was made with onnxruntime {manifest.get('onnxruntime')}, this is {ort.__version__}"
    if manifest.get("weights_sha256") != weights_digest(backbone):
        return "it was exported from other backbone weights (stale)"
    for name in FILES:
        path, want = folder / name, files.get(name)
        if want is None or not path.exists():
            return f"{name} is missing"
        if path.stat().st_size != want["size"] or file_digest(path) != want["sha256"]:
            return f"{name} is corrupt (its size or SHA-256 differs from the manifest)"
    return None


class _Body(nn.Module):
    """The backbone's base model with its cache as flat tensors: what the ONNX graph computes."""

    def __init__(self, base, layers: int):
        super().__init__()
        self.base, self.layers = base, layers

    def forward(self, embeds, mask, positions, *past):
        cache = kv_cache(past)
        out = self.base(inputs_embeds=embeds, attention_mask=mask, position_ids=positions, use_cache=True,
                        **{cache_keyword(self.base): cache})
        present = getattr(out, cache_keyword(self.base))
        return (out.last_hidden_state, *kv_tensors(present))


class _Head(nn.Module):
    """The LM head as one MatMul over [B, 1, hidden]: a Linear on 2-D input would export as Gemm, which
    onnxruntime's 8-bit weight quantizer leaves alone, and the 8-bit screen (the module's docstring) needed
    the head quantizable."""

    def __init__(self, head: nn.Linear):
        super().__init__()
        self.head = head

    def forward(self, hidden):
        out = torch.matmul(hidden, self.head.weight.t())
        return out if self.head.bias is None else out + self.head.bias


def kv_shape(config) -> tuple[int, int]:
    """(key/value heads, head width) of a backbone config."""
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return config.num_key_value_heads, head_dim


def write_export(folder: Path, backbone: Backbone) -> Path:
    onnx, ort = require_onnx()
    if backbone.dtype != torch.float32 or backbone.device.type != "cpu":
        raise InputError(f"the onnx backend exports a float32 backbone on the CPU (this one is {backbone.dtype} "
                         f"on {backbone.device}); load the model with dtype='float32', device='cpu'")
    base, config = backbone.model.base_model, backbone.model.config
    layers, (kv_heads, head_dim) = config.num_hidden_layers, kv_shape(config)
    pasts = [f"past.{i // 2}.{'kv'[i % 2]}" for i in range(2 * layers)]
    presents = [f"present.{i // 2}.{'kv'[i % 2]}" for i in range(2 * layers)]
    axes = {"embeds": {0: "batch", 1: "new"}, "mask": {0: "batch", 2: "new", 3: "total"},
            "positions": {0: "batch", 1: "new"}, "hidden": {0: "batch", 1: "new"},
            **{n: {0: "batch", 2: "past"} for n in pasts}, **{n: {0: "batch", 2: "total"} for n in presents}}
    batch, past_len, new = 2, 3, 4
    example = (torch.randn(batch, new, config.hidden_size), torch.zeros(batch, 1, new, past_len + new),
               torch.arange(past_len, past_len + new).expand(batch, -1),
               *[torch.randn(batch, kv_heads, past_len, head_dim) for _ in pasts])

    def body(path: Path):
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(_Body(base, layers).eval(), example, str(path), input_names=["embeds", "mask",
                              "positions", *pasts], output_names=["hidden", *presents], dynamic_axes=axes,
                              dynamo=False, opset_version=17)
        _external(onnx, path)

    def head(path: Path):
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(_Head(backbone.model.get_output_embeddings()), (torch.randn(batch, 1, config.hidden_size),),
                              str(path), input_names=["hidden"], output_names=["logits"],
                              dynamic_axes={"hidden": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False,
                              opset_version=17)
        _external(onnx, path)

    staging = Path(folder.parent / f".{folder.name}.staging")
    staging.mkdir(parents=True, exist_ok=True)
    try:
        body(staging / "body.onnx")
        head(staging / "head.onnx")
        files = {name: {"size": (staging / name).stat().st_size, "sha256": file_digest(staging / name)}
                 for name in FILES}
        manifest = {"format": FORMAT, "onnxruntime": ort.__version__, "onnx": onnx.__version__,
                    "torch": torch.__version__, "backbone": backbone.name, "weights_sha256": weights_digest(backbone),
                    "layers": layers, "kv_heads": kv_heads, "head_dim": head_dim, "files": files}
        copy = {name: (lambda p, n=name: (staging / n).rename(p)) for name in FILES}
        write_folder(folder, {**copy, "manifest.json": lambda p: p.write_text(json.dumps(manifest, indent=1))})
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _external(onnx, path: Path) -> None:
    """Rewrite a model with its weights in `<name>.data` beside it (one file, whatever the size)."""
    model = onnx.load(str(path))
    for stale in path.parent.glob(f"{path.name}*"):
        stale.unlink()
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=f"{path.name}.data", size_threshold=0)

