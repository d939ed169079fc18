"""The inference backends on a CPU with native bf16: where OpenVINO's time goes, and what bf16 does to greedy decodes.

    .venv/bin/python lab/experiments/openvino_bf16_probe.py [--texts 64] [--decode-texts 40]

On the bundled default (needs openvino; meaningful where bf16 is native):
1. padding: positions the old cut (full batches of 32 of the length-sorted rows) and the cost cut
   (batching.plan_batches) run for --texts held-out ShareGPT queries, against their tokens;
2. encode under bf16 on backend openvino: the share of wall time spent in the body graph;
3. the body graph alone on synthetic inputs, per engine (onnxruntime float32, OpenVINO float32, OpenVINO
   bf16, OpenVINO float32 with float16-compressed weights): one decode step (batch 1, 40 cached
   positions; plus the head) and one encode-size call (32 rows x 100 new positions after 20 cached),
   with the GFLOP/s that call reaches (2 x the body's matrix parameters per position);
4. greedy decodes (the default decoder, 48 tokens) of --decode-texts queries on openvino against
   float32: every graph in bf16 (the soft prompt, the steps and the head), and a bf16 soft prompt
   followed by float32 steps.
Writes lab/experiments/results/openvino_bf16_probe.json.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "lab" / "experiments"))

import genembed  # noqa: E402
from genembed import batching  # noqa: E402
from genembed.data import load_sharegpt  # noqa: E402
from batch_plan import padded_positions  # noqa: E402
from openvino_weights import feeds, median_ms  # noqa: E402


def padding(model, texts) -> dict:
    lengths = [len(r) for r in model.token_rows(texts, model.resolve_instruction(None))]
    return {"tokens": sum(lengths), "positions_full_batches": padded_positions(lengths, "full"),
            "positions_cost_cut": padded_positions(lengths, str(batching.CALL_COST))}


def body_share(model, texts) -> dict:
    with torch.autocast("cpu", dtype=torch.bfloat16):
        session = model.runtime.session("encode")[0]
    inside = [0.0]
    run = session.run

    def timed(*a, **k):
        t = time.perf_counter()
        out = run(*a, **k)
        inside[0] += time.perf_counter() - t
        return out

    model.encode(texts, bf16=True)  # warm: compile, shapes, prefix cache
    session.run = timed
    try:
        t = time.perf_counter()
        model.encode(texts, bf16=True)
        wall = time.perf_counter() - t
    finally:
        del session.run
    return {"wall_s": wall, "body_s": inside[0], "body_share": inside[0] / wall}


def engines(model) -> dict:
    import openvino as ov

    folder = model.runtime.folder
    manifest = json.loads((folder / "manifest.json").read_text())
    step = feeds(manifest, model.backbone.hidden_size, 40)
    rng = np.random.default_rng(0)
    rows, new, past = 32, 100, 20
    enc = {"embeds": rng.standard_normal((rows, new, model.backbone.hidden_size), dtype=np.float32) * 0.05,
           "mask": np.zeros((rows, 1, new, new + past), np.float32),
           "positions": np.tile(np.arange(past, past + new), (rows, 1)).astype(np.int64)}
    for i in range(manifest["layers"]):
        for k in "kv":
            enc[f"past.{i}.{k}"] = rng.standard_normal((rows, manifest["kv_heads"], past, manifest["head_dim"]),
                                                       dtype=np.float32)
    lm = model.backbone.model
    flop = 2 * sum(p.numel() for n, p in lm.base_model.named_parameters() if p.dim() == 2 and "embed" not in n)
    onnx = genembed.load(backend="onnx").runtime  # (the same export)
    body, head = onnx.session("decode")[0], onnx.session("head")[0]
    out = {"onnxruntime float32": {"step body ms": median_ms(lambda f: body.run(None, f), step["body.onnx"], 20),
                                   "step head ms": median_ms(lambda f: head.run(None, f), step["head.onnx"], 20),
                                   "encode call ms": median_ms(lambda f: body.run(None, f), enc, 3)}}
    core = ov.Core()
    with tempfile.TemporaryDirectory() as tmp:
        w16 = {}
        for g in ("body", "head"):
            ov.save_model(core.read_model(str(folder / f"{g}.onnx")), f"{tmp}/{g}.xml", compress_to_fp16=True)
            w16[g] = f"{tmp}/{g}.xml"
        for label, precision, graphs in (
                ("openvino float32", "f32", {g: str(folder / f"{g}.onnx") for g in ("body", "head")}),
                ("openvino bf16", "bf16", {g: str(folder / f"{g}.onnx") for g in ("body", "head")}),
                ("openvino float32, float16 weights", "f32", w16)):
            config = {"INFERENCE_NUM_THREADS": torch.get_num_threads(), "INFERENCE_PRECISION_HINT": precision,
                      "PERFORMANCE_HINT": "LATENCY"}
            b = core.compile_model(graphs["body"], "CPU", config).create_infer_request()
            h = core.compile_model(graphs["head"], "CPU", config).create_infer_request()
            out[label] = {"step body ms": median_ms(b.infer, step["body.onnx"], 20),
                          "step head ms": median_ms(h.infer, step["head.onnx"], 20),
                          "encode call ms": median_ms(b.infer, enc, 3)}
    for row in out.values():
        row["encode call GFLOP/s"] = flop * rows * new / 1e9 / (row["encode call ms"] / 1000)
    return out


@contextlib.contextmanager
def patched(owner, name, value):
    old = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, old)


def decodes(model, texts) -> dict:
    from genembed import backends

    model.set_backend("openvino")
    reference = model.decode(texts, max_new_tokens=48)
    # every graph in bf16, steps and head included (encode and generate switch autocast off inside, so an
    # autocast around model.decode would not reach them)
    model.prefix_cache.clear()
    with patched(backends, "autocast_precision", lambda: "bf16"):
        all_bf16 = model.decode(texts, max_new_tokens=48)
    model.prefix_cache.clear()
    runtime = model.runtime
    plain = runtime.base

    def bf16_base(**kw):  # the soft prompt (and the prefix cache) in bf16, the steps in float32
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return plain(**kw)

    runtime.base = bf16_base
    model.prefix_cache.clear()
    try:
        bf16_prompt = model.decode(texts, max_new_tokens=48)
    finally:
        del runtime.base
        model.prefix_cache.clear()
    same = lambda xs: sum(a == b for a, b in zip(xs, reference))  # noqa: E731
    return {"texts": len(texts), "identical all bf16": same(all_bf16), "identical bf16 soft prompt": same(bf16_prompt)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--texts", type=int, default=64)
    ap.add_argument("--decode-texts", type=int, default=40)
    args = ap.parse_args(argv)
    queries = [c.query for c in load_sharegpt("heldout")]
    model = genembed.load(backend="openvino")
    result = {"threads": torch.get_num_threads(), "padding": padding(model, queries[: args.texts]),
              "encode_bf16_openvino": body_share(model, queries[: args.texts]), "engines": engines(model),
              "decodes": decodes(model, queries[: args.decode_texts])}
    print(json.dumps(result, indent=1))
    out = ROOT / "lab" / "experiments" / "results" / "openvino_bf16_probe.json"
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
