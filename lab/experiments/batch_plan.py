"""What a forward call costs beyond its padded positions: choosing batching.CALL_COST on texts apart from
the benchmarks'.

    .venv/bin/python lab/experiments/batch_plan.py [--texts 256] [--costs 0,64,256,1024,full] [--repeats 2]

Encodes --texts ShareGPT *training-split* queries (lab/benchmarks/backends.py times held-out ones) with the
bundled default, batch 32, once per candidate CALL_COST (full: full batches of 32, the cut before plan_batches)
and per backend path (torch float32, onnx float32, openvino bf16 where bf16 is native), and prints the
seconds (median of --repeats after a warm-up) and the padded positions each plan runs. Writes
lab/experiments/results/batch_plan.json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import genembed  # noqa: E402
from genembed import batching  # noqa: E402
from genembed.backbone import bf16_is_native  # noqa: E402
from genembed.data import load_sharegpt  # noqa: E402


PLAN = batching.plan_batches  # (main swaps batching.plan_batches per candidate; this stays the real one)


def cut(lengths: list[int], cost: str) -> list[int]:
    """Batch starts for rows sorted longest first: full batches of 32 (the cut before plan_batches) or the
    plan at call cost `cost`."""
    return list(range(0, len(lengths), 32)) if cost == "full" else PLAN(lengths, 32, int(cost))


def padded_positions(lengths: list[int], cost: str) -> int:
    """Positions encode runs for rows of these lengths (input order): per window, sorted, then cut."""
    total = 0
    for w in range(0, len(lengths), 32 * batching.WINDOW):
        window = sorted(lengths[w:w + 32 * batching.WINDOW], reverse=True)
        starts = cut(window, cost)
        total += sum((e - s) * window[s] for s, e in zip(starts, starts[1:] + [len(window)]))
    return total


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--texts", type=int, default=256)
    ap.add_argument("--costs", default="0,64,256,1024,full")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args(argv)
    texts = [c.query for c in load_sharegpt("train")][5000:5000 + args.texts]
    model = genembed.load()
    paths = [("torch", False), ("onnx", False)] + ([("openvino", True)] if bf16_is_native() else [])
    lengths = [len(r) for r in model.token_rows(texts, model.resolve_instruction(None))]
    costs = args.costs.split(",")
    results = {"texts": len(texts), "threads": torch.get_num_threads(), "seconds": {}, "real_positions": sum(lengths),
               "padded_positions": {cost: padded_positions(lengths, cost) for cost in costs}}
    for backend, bf16 in paths:
        model.set_backend(backend)
        name = f"{backend} {'bf16' if bf16 else 'fp32'}"
        results["seconds"][name] = {}
        for cost in costs:
            batching.plan_batches = lambda lengths, size, call_cost, cost=cost: cut(lengths, cost)
            try:
                model.encode(texts[:64], bf16=bf16)  # warm-up
                times = []
                for _ in range(args.repeats):
                    t = time.perf_counter()
                    model.encode(texts, bf16=bf16)
                    times.append(time.perf_counter() - t)
            finally:
                batching.plan_batches = PLAN
            results["seconds"][name][cost] = statistics.median(times)
            print(f"{name:14} call cost {cost:>6}: {statistics.median(times):6.2f} s, padded positions "
                  f"{results['padded_positions'][cost]} (real {results['real_positions']})", flush=True)
    out = ROOT / "lab" / "experiments" / "results" / "batch_plan.json"
    out.write_text(json.dumps(results, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
