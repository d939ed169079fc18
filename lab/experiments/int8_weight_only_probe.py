"""Could torch's weight-only int8 kernel speed up decoding (batch 1, memory-bound)?

    .venv/bin/python lab/experiments/int8_weight_only_probe.py [--repeats 2000]

Decoding one text reads every weight once a token, so int8 weights (a quarter of float32's bytes) with
float32 activations would keep SmolLM2's outlier channels exact and could cut the step. torch's CPU
kernel for that is `aten._weight_int8pack_mm` (int8 weights, one float scale per output row), the one
torchao's int8 weight-only mode calls on a CPU. This times it against float32 on SmolLM2-135M's body
shapes at one row of activations (a decode step), and prints the error of one product. Writes
lab/experiments/results/int8_weight_only_probe.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
SHAPES = {"q_proj / o_proj": (576, 576), "k_proj / v_proj": (192, 576), "gate_proj / up_proj": (1536, 576),
          "down_proj": (576, 1536)}  # (out, in) of SmolLM2-135M's Linears


def per_call_us(f, repeats: int) -> float:
    for _ in range(repeats // 20):
        f()
    start = time.perf_counter()
    for _ in range(repeats):
        f()
    return (time.perf_counter() - start) / repeats * 1e6


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=2000)
    ap.add_argument("--out", default=str(ROOT / "lab" / "experiments" / "results" / "int8_weight_only_probe.json"))
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    out = {"command": "python lab/experiments/int8_weight_only_probe.py " + " ".join(argv or sys.argv[1:]),
           "torch": torch.__version__, "threads": torch.get_num_threads(), "shapes": {}}
    for name, (rows, cols) in SHAPES.items():
        w, x = torch.randn(rows, cols), torch.randn(1, cols)
        scale = w.abs().amax(1) / 127
        wq = (w / scale[:, None]).round().clamp(-127, 127).to(torch.int8)
        exact = x @ w.T
        approx = torch.ops.aten._weight_int8pack_mm(x, wq, scale)
        fp32 = per_call_us(lambda: x @ w.T, args.repeats)
        int8 = per_call_us(lambda: torch.ops.aten._weight_int8pack_mm(x, wq, scale), args.repeats)
        out["shapes"][name] = {"float32_us": fp32, "int8_weight_only_us": int8, "int8_over_float32": int8 / fp32,
                               "relative_error": ((approx - exact).norm() / exact.norm()).item()}
        print(name, out["shapes"][name], flush=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
