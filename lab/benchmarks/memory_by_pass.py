"""Where genembed's training memory goes: the peak RSS of each pass of one training step, alone.

    .venv/bin/python lab/benchmarks/memory_by_pass.py        # after lab/benchmarks/run.py (uses its inputs.json)

Each pass runs in a fresh process (so none inherits another's freed-but-kept memory) on the
benchmark's training batch and model (those of its inputs.json and checkpoint/: 32 queries and
their responses, 0 + 10 tokens by default), fp32:
  encode      the encoder pass (text into a KV cache, special tokens with autograd) and its backward
  recon       the reconstruction pass (soft prompt + response through the frozen LLM, cross-entropy)
              and its backward, soft prompt given
  recon-ckpt  the same with --gradient-checkpointing
Printed: peak RSS above the RSS after loading, MiB.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parents[1]))

PASSES = ("encode", "recon", "recon-ckpt")


def measure(name: str, inputs: Path) -> float:
    import torch

    import bench_common as bc
    from genembed.inputs import pad
    from genembed.losses import reconstruction_loss
    from genembed_worker import build, train_batch

    inp = bc.load_inputs(str(inputs))
    bc.set_threads(inp["config"]["threads"])
    ckpt = inputs.parent / "checkpoint"  # the run's official-layout checkpoint, as the benchmark's workers load it
    bb, model, _ = build(inp, str(ckpt) if (ckpt / "run_config.yml").is_file() else None)
    model.train()
    q_rows, r_rows = train_batch(model, inp)
    q_ids, q_mask = pad(q_rows, bb.tokenizer.pad_token_id, "left")
    r_ids, r_mask = pad(r_rows, bb.tokenizer.pad_token_id, "right")
    soft = torch.randn(len(q_rows), model.config.num_compression_tokens, bb.hidden_size, requires_grad=True)
    bc.reset_peak_rss()
    before = bc.rss_mib()
    if name == "encode":
        prompt, embedding = model(q_ids, q_mask)
        (prompt.sum() + embedding.sum()).backward()
    else:
        reconstruction_loss(bb.model, soft, r_ids, r_mask, checkpointing=name == "recon-ckpt").backward()
    return bc.peak_rss_mib() - before


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--inputs", default=str(HERE / "results" / "inputs.json"))
    ap.add_argument("--one", choices=PASSES, help=argparse.SUPPRESS)  # a worker process: one pass
    args = ap.parse_args()
    inputs = Path(args.inputs)
    if not inputs.exists():
        raise SystemExit(f"{inputs} is missing: run lab/benchmarks/run.py first (it writes the inputs)")
    if args.one:
        print(json.dumps({"pass": args.one, "peak_over_load_mib": measure(args.one, inputs)}))
        return
    print("| pass (batch 32, fp32) | peak RSS above the loaded model, MiB |\n|---|---:|")
    for name in PASSES:
        out = subprocess.run([sys.executable, __file__, "--inputs", str(inputs), "--one", name],
                             capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        print(f"| {name} | {json.loads(out)['peak_over_load_mib']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
