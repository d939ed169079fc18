"""A short training and encode of the tiny test model on the GPU: step time and peak GPU memory.
Run by scripts/gpu_check.sh after the test suite."""
import json
import tempfile
import time
from pathlib import Path

import torch

from genembed import load
from genembed.recipe import TrainConfig
from genembed.testing import CORPUS, build_tiny_backbone
from genembed.train import train

assert torch.cuda.is_available(), "no CUDA device"
with tempfile.TemporaryDirectory() as tmp:
    tmp = Path(tmp)
    backbone = build_tiny_backbone(tmp / "backbone", hidden=256, layers=4)
    rows = [{"id": str(i), "query": CORPUS[i % 10], "response": CORPUS[(i + 1) % 10]} for i in range(256)]
    (tmp / "r.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(f"device: {torch.cuda.get_device_name()}  torch {torch.__version__}")
    for dtype, bf16 in (("float32", False), ("float32", True), ("bfloat16", True)):
        torch.cuda.reset_peak_memory_stats()
        cfg = TrainConfig(responses=str(tmp / "r.jsonl"), out_dir=str(tmp / f"run-{dtype}-{bf16}"), backbone=backbone,
                          teacher="self", steps=30, batch_size=32, warmup_steps=5, w_rec=1.0, dtype=dtype, bf16=bf16,
                          save_every=30)
        train(cfg, show_progress_bar=False)
        log = [json.loads(line) for line in Path(cfg.out_dir, "log.jsonl").read_text().splitlines()]
        step = sorted(r["seconds"] for r in log[5:])[len(log[5:]) // 2]
        print(f"train  dtype={dtype:<8} autocast_bf16={bf16!s:<5}  median step {step * 1000:7.1f} ms  "
              f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**20:8.1f} MiB")
    model = load(Path(cfg.out_dir) / "model", device="cuda")
    texts = [CORPUS[i % 10] + f" {i}" for i in range(4096)]
    model.encode(texts[:64])
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    model.encode(texts, batch_size=256)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    print(f"encode 4096 texts at batch 256: {seconds:.2f} s ({len(texts) / seconds:,.0f} texts/s), "
          f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**20:.1f} MiB")
