"""How fast this CPU streams float32 weights through matrix-vector products (what one decoded token
costs): one large matrix against SmolLM2's 210 small ones (7 per layer × 30), as separate tensors,
as views of one buffer, and with q/k/v and gate/up fused (4 per layer); at 1 and 2 threads; and the
same fused matrices in float16.

    .venv/bin/python lab/benchmarks/gemv_bandwidth.py        # ~1 min; run it on an idle machine
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F

LAYER = [(576, 576), (192, 576), (192, 576), (576, 576), (1536, 576), (1536, 576), (576, 1536)]  # q k v o gate up down
FUSED = [(960, 576), (576, 576), (3072, 576), (576, 1536)]  # qkv o gate+up down


def gb_per_s(weights: list[torch.Tensor], repeats: int = 5) -> float:
    xs = {w.shape[1]: torch.randn(1, w.shape[1], dtype=w.dtype) for w in weights}
    for w in weights:
        F.linear(xs[w.shape[1]], w)
    start = time.perf_counter()
    for _ in range(repeats):
        for w in weights:
            F.linear(xs[w.shape[1]], w)
    seconds = (time.perf_counter() - start) / repeats
    return sum(w.numel() * w.element_size() for w in weights) / seconds / 1e9


def main() -> None:
    torch.manual_seed(0)
    for threads in (1, 2):
        torch.set_num_threads(threads)
        shapes = LAYER * 30
        flat = torch.randn(sum(a * b for a, b in shapes))
        views, offset = [], 0
        for a, b in shapes:
            views.append(flat[offset:offset + a * b].view(a, b))
            offset += a * b
        fused = [torch.randn(a, b) for a, b in FUSED * 30]
        rows = {"one 2304 x 46000 matrix": [torch.randn(2304, 46000)],
                "210 separate matrices": [torch.randn(a, b) for a, b in shapes],
                "210 views of one buffer": views,
                "120 fused matrices": fused,
                "120 fused matrices, float16": [w.half() for w in fused]}
        for name, weights in rows.items():
            print(f"threads {threads}: {name:<30} {gb_per_s(weights):5.1f} GB/s")


if __name__ == "__main__":
    main()
