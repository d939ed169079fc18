"""Screen for a low-precision inference backend: encode speed and embedding fidelity of
candidate engines for the frozen backbone's forward pass, side by side in one process.

    .venv/bin/python lab/experiments/backend_probe.py --texts 128 --batch-size 32

Every candidate runs the bundled default's encoder pass on the same held-out ShareGPT queries cut to
FAQ length (32 tokens), with the shared-head cache off for all (so each runs the whole input), and
is compared with the float32 torch reference: texts/s and the cosine of each embedding to the
reference's (min and mean). Candidates: torch float32 (the reference), torch bfloat16 weights,
torch dynamic int8 of every Linear, and the same with the outlier-prone down/o projections kept in
float32. A screen, not a backend: it says which engine is worth building behind `backend=`. (Its
first run, lab/experiments/results/backend_probe.json, shared the 2 cores with other jobs: the speeds
are comparable with each other only.)
"""
from __future__ import annotations

import argparse
import copy
import json
import time

import numpy as np
import torch

import genembed
from genembed.data import load_sharegpt
from genembed.vectors import unit


def queries(n: int, tokenizer, tokens: int = 32) -> list[str]:
    convs = sorted(load_sharegpt("heldout"), key=lambda c: c.id)[:n]
    return [tokenizer.decode(tokenizer(c.query, add_special_tokens=False).input_ids[:tokens]) for c in convs]


def timed_encode(model, texts, batch_size: int, repeats: int = 2) -> tuple[np.ndarray, float]:
    model.encode(texts[:batch_size], batch_size=batch_size)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        out = model.encode(texts, batch_size=batch_size)
        best = min(best, time.perf_counter() - start)
    return out, len(texts) / best


def quantized(model, keep_fp32: tuple[str, ...] = ()) -> torch.nn.Module:
    base = copy.deepcopy(model.backbone.model.base_model)
    names = {n for n, m in base.named_modules() if isinstance(m, torch.nn.Linear) and not n.endswith(keep_fp32)}
    return torch.ao.quantization.quantize_dynamic(base, {n: torch.ao.quantization.default_dynamic_qconfig
                                                         for n in names}, dtype=torch.qint8)


def run_with(model, base, texts, batch_size):
    """encode() with the backbone's base model swapped for `base` for the duration."""
    lm = model.backbone.model
    name = lm.base_model_prefix
    original = getattr(lm, name)
    setattr(lm, name, base)
    try:
        return timed_encode(model, texts, batch_size)
    finally:
        setattr(lm, name, original)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--texts", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--out", default="lab/experiments/results/backend_probe.json")
    args = ap.parse_args()
    model = genembed.load()
    model.prefix_cache.enabled = False
    texts = queries(args.texts, model.backbone.tokenizer)
    rows = {}
    ref, speed = timed_encode(model, texts, args.batch_size)
    rows["torch float32 (reference)"] = {"texts_per_s": speed, "min_cos": 1.0, "mean_cos": 1.0}

    def score(name, out, speed):
        cos = (unit(out) * unit(ref)).sum(1)
        rows[name] = {"texts_per_s": speed, "min_cos": float(cos.min()), "mean_cos": float(cos.mean())}
        print(f"{name:<50} {speed:6.1f} texts/s  cos min {cos.min():.4f} mean {cos.mean():.4f}", flush=True)

    bf16 = genembed.load(dtype="bfloat16")
    bf16.prefix_cache.enabled = False
    score("torch bfloat16 weights", *timed_encode(bf16, texts, args.batch_size))
    del bf16
    score("torch dynamic int8, every Linear", *run_with(model, quantized(model), texts, args.batch_size))
    score("torch dynamic int8, down_proj/o_proj in float32",
          *run_with(model, quantized(model, ("down_proj", "o_proj")), texts, args.batch_size))
    with open(args.out, "w") as f:
        json.dump({"command": f"python lab/experiments/backend_probe.py --texts {args.texts} --batch-size "
                              f"{args.batch_size}", "threads": torch.get_num_threads(), "rows": rows}, f, indent=2)
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
