"""What a forward call costs beyond its padded positions: choosing batching.CALL_COST on texts apart from
the benchmarks' (issue 26).

    .venv/bin/python experiments/batch_plan.py [--texts 256] [--costs 0,64,256,1024,100000] [--repeats 2]

Encodes --texts ShareGPT *training-split* queries (benchmarks/backends.py times held-out ones) with the
bundled default, batch 32, once per candidate CALL_COST (100000: no split, every batch full, as before)
and per backend path (torch float32, onnx float32, openvino bf16 where bf16 is native), and prints the
seconds (median of --repeats after a warm-up) and the padded positions each plan runs. Writes
experiments/results/batch_plan.json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import genembed  # noqa: E402
from genembed import batching  # noqa: E402
from genembed.backbone import bf16_is_native  # noqa: E402
from genembed.data import load_sharegpt  # noqa: E402


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--texts", type=int, default=256)
    ap.add_argument("--costs", default="0,64,256,1024,100000")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args(argv)
    texts = [c.query for c in load_sharegpt("train")][5000:5000 + args.texts]
    model = genembed.load()
    paths = [("torch", False), ("onnx", False)] + ([("openvino", True)] if bf16_is_native() else [])
    lengths = sorted((len(r) for r in model.token_rows(texts, model.resolve_instruction(None))), reverse=True)
    results = {"texts": len(texts), "threads": torch.get_num_threads(), "seconds": {}, "padded_positions": {}}
    for cost in map(int, args.costs.split(",")):
        starts = []
        for w in range(0, len(lengths), 32 * batching.WINDOW):
            window = sorted(lengths[w:w + 32 * batching.WINDOW], reverse=True)
            cuts = batching.plan_batches(window, 32, cost)
            starts += [(window, a, b) for a, b in zip(cuts, cuts[1:] + [len(window)])]
        results["padded_positions"][cost] = sum((b - a) * win[a] for win, a, b in starts)
    results["real_positions"] = sum(lengths)
    for backend, bf16 in paths:
        model.set_backend(backend)
        name = f"{backend} {'bf16' if bf16 else 'fp32'}"
        results["seconds"][name] = {}
        for cost in map(int, args.costs.split(",")):
            batching.CALL_COST = cost
            model.encode(texts[:64], bf16=bf16)  # warm-up
            times = []
            for _ in range(args.repeats):
                t = time.perf_counter()
                model.encode(texts, bf16=bf16)
                times.append(time.perf_counter() - t)
            results["seconds"][name][cost] = statistics.median(times)
            print(f"{name:14} call cost {cost:6d}: {statistics.median(times):6.2f} s, padded positions "
                  f"{results['padded_positions'][cost]} (real {results['real_positions']})", flush=True)
    out = ROOT / "experiments" / "results" / "batch_plan.json"
    out.write_text(json.dumps(results, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
