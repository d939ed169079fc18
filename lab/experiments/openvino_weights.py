"""Would OpenVINO's 8-bit weights make decoding one text fast enough? One decode step, timed.

    .venv/bin/pip install openvino==2026.4.1 nncf==3.4.0      # not genembed dependencies
    .venv/bin/python lab/experiments/openvino_weights.py [--past 40] [--repeats 30]

The onnx backend's export of the bundled default's backbone (body and head, onnx_export.py), one
decode step at batch 1 (one new position after PAST cached ones, synthetic inputs), on:
* onnxruntime, float32, configured as backend="onnx" configures it (2 threads, no spin-waiting);
* OpenVINO, float32 weights;
* OpenVINO, int8 weights with float32 compute (nncf.compress_weights, INT8_ASYM and INT8_SYM:
  per-output-channel scales, weights decompressed inside the matmul).
Each session is timed alone (body, then head), median of REPEATS steps after a warm-up. Writes
lab/experiments/results/openvino_weights.json. Speed only: a variant too slow for the 5x goal needs no
quality check.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import genembed  # noqa: E402


def feeds(manifest: dict, hidden: int, past: int) -> dict:
    rng = np.random.default_rng(0)
    body = {"embeds": rng.standard_normal((1, 1, hidden), dtype=np.float32) * 0.05,
            "mask": np.zeros((1, 1, 1, past + 1), np.float32), "positions": np.array([[past]], np.int64)}
    for i in range(manifest["layers"]):
        for k in "kv":
            body[f"past.{i}.{k}"] = rng.standard_normal((1, manifest["kv_heads"], past, manifest["head_dim"]),
                                                        dtype=np.float32)
    return {"body.onnx": body, "head.onnx": {"hidden": rng.standard_normal((1, 1, hidden), dtype=np.float32)}}


def median_ms(run, feed, repeats: int) -> float:
    run(feed)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        run(feed)
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--past", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=30)
    args = ap.parse_args()
    import nncf
    import onnxruntime as ort
    import openvino as ov

    model = genembed.load(backend="onnx")
    folder = model.runtime.folder
    manifest = json.loads((folder / "manifest.json").read_text())
    inputs = feeds(manifest, model.backbone.hidden_size, args.past)
    threads = torch.get_num_threads()
    core = ov.Core()
    results = {"threads": threads, "past": args.past, "openvino": ov.__version__, "nncf": nncf.__version__,
               "onnxruntime": ort.__version__, "ms": {}}
    for graph in ("body.onnx", "head.onnx"):
        session, _ = model.runtime.session("decode" if graph == "body.onnx" else "head")  # made exactly as backend="onnx" makes it
        row = {"onnxruntime float32": median_ms(lambda f: session.run(None, f), inputs[graph], args.repeats)}
        for name, mode in (("openvino float32", None), ("openvino int8 weights (asym)", nncf.CompressWeightsMode.INT8_ASYM),
                           ("openvino int8 weights (sym)", nncf.CompressWeightsMode.INT8_SYM)):
            graph_model = core.read_model(str(folder / graph))
            if mode is not None:
                graph_model = nncf.compress_weights(graph_model, mode=mode)
            compiled = core.compile_model(graph_model, "CPU", {"INFERENCE_NUM_THREADS": threads,
                                                               "INFERENCE_PRECISION_HINT": "f32",
                                                               "PERFORMANCE_HINT": "LATENCY"})
            request = compiled.create_infer_request()
            row[name] = median_ms(request.infer, inputs[graph], args.repeats)
        results["ms"][graph] = row
    engines = list(results["ms"]["body.onnx"])
    print(f"one decode step, batch 1, {args.past} cached positions, {threads} threads (median ms):")
    print(f"{'engine':32} {'body':>7} {'head':>7} {'sum':>7}")
    for e in engines:
        body, head = results["ms"]["body.onnx"][e], results["ms"]["head.onnx"][e]
        print(f"{e:32} {body:7.1f} {head:7.1f} {body + head:7.1f}")
    out = ROOT / "lab" / "experiments" / "results" / "openvino_weights.json"
    out.write_text(json.dumps(results, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
