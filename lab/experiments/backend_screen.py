"""Screen of 8-bit variants of the onnx backend's graph (why backend="onnx" stays float32).

    .venv/bin/python lab/experiments/backend_screen.py          # ~5 min on 2 cores

The bundled default's backbone export (onnx_export.py), then onnxruntime's MatMulNBits 8-bit weight
quantization (blocks of 32, symmetric) of the body, and of the head, in the variants below; each
decodes the same 6 texts (48 new tokens, the default decoder) and is compared with the float32
torch decodes: the share identical, and the seconds for the batch. Writes
lab/experiments/results/backend_screen.json.
"""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import genembed  # noqa: E402
from genembed import backends  # noqa: E402
from genembed.onnx_export import ensure_export  # noqa: E402

TEXTS = ["how do I boil an egg?", "write a poem about the sea", "what is the capital of France and why is it famous?",
         "Explain quantum computing in simple terms", "best way to learn python", "recipe for chocolate cake"]
VARIANTS = {  # name: (quantize the body with this accuracy level or None, its MatMuls kept in float32, quantize the head)
    "float32 (backend='onnx')": (None, (), False),
    "8-bit head, int8 compute": (None, (), True),
    "8-bit body + head, int8 compute": (4, (), True),
    "8-bit body, int8 compute": (4, (), False),
    "8-bit body but down_proj, int8 compute": (4, ("down_proj",), False),
    "8-bit body, float32 compute": (1, (), False),
}


def quantize(source: Path, target: Path, accuracy: int, keep=()) -> None:
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer

    model = onnx.load(str(source))
    skip = [n.name for n in model.graph.node if n.op_type == "MatMul" and any(k in n.name for k in keep)]
    settings = dict(block_size=32, is_symmetric=True, accuracy_level=accuracy)
    q = MatMulNBitsQuantizer(model, **settings, nodes_to_exclude=skip,
                             algo_config=DefaultWeightOnlyQuantConfig(**settings, bits=8))
    q.process()
    for stale in target.parent.glob(target.name + "*"):
        stale.unlink()
    onnx.save_model(q.model.model, str(target), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=target.name + ".data", size_threshold=0)


def main() -> None:
    model = genembed.load()
    reference = model.decode(TEXTS, max_new_tokens=48)
    folder = ensure_export(model.backbone)
    rows = {}
    for name, (body_level, keep, head) in VARIANTS.items():
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            for f in folder.iterdir():
                shutil.copy(f, tmp / f.name)
            if body_level is not None:
                quantize(folder / "body.onnx", tmp / "body.onnx", body_level, keep)
            if head:
                quantize(folder / "head.onnx", tmp / "head.onnx", 4)
            model.runtime, model.backend = backends.OnnxBackbone(model.backbone, tmp), "onnx"
            model.prefix_cache.clear()
            model.decode(TEXTS[:1], max_new_tokens=2)  # warm
            start = time.perf_counter()
            out = model.decode(TEXTS, max_new_tokens=48)
            rows[name] = {"seconds": time.perf_counter() - start,
                          "identical": sum(a == b for a, b in zip(out, reference)) / len(TEXTS)}
            print(name, rows[name], flush=True)
    result = {"command": "python lab/experiments/backend_screen.py", "threads": torch.get_num_threads(), "rows": rows}
    (ROOT / "lab" / "experiments" / "results" / "backend_screen.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
