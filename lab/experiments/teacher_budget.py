"""How long does a step of each phase of `genembed teacher build` take on this machine? (the CPU budget of an
LLM2Vec teacher of SmolLM2-135M-Instruct)

Times full optimiser steps (forward, backward, clipping, AdamW) of the build's own phases
(genembed.teacher_build.phases) on ShareGPT training texts, at a few batch sizes and lengths: MNTP on packed
blocks, SimCSE on texts cut to the length (two views each). One warm-up step, then the mean of the timed
steps; the load average is printed beside each row, since a shared machine slows every figure, and the
process's peak memory so far (the settings run in the order given: list them from small to large). Memory
grows by about 3 MB per token of a step without --gradient-checkpointing.

    .venv/bin/python lab/experiments/teacher_budget.py [--steps 3] [--mntp 8x128,8x256,4x512] [--simcse 32x64]
        [--gradient-checkpointing] [--lora-dropout 0.05] [--threads N]
"""
import argparse
import os
import resource
import tempfile
import time
from dataclasses import replace

import torch

from genembed.backbone import transformers_path
from genembed.teacher_build import TeacherBuildConfig
from genembed.teacher_build.phases import MNTPPhase, SimCSEPhase
from genembed.teacher_build.texts import mntp_blocks, read_texts


def grid(text: str) -> list[tuple[int, int]]:
    return [tuple(int(x) for x in item.split("x")) for item in text.split(",") if item]


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20


def timed(phase, steps: int) -> float:
    optimizer = torch.optim.AdamW(phase.trainable, lr=1e-5)
    seconds = []
    for step in range(steps + 1):
        t0 = time.perf_counter()
        phase.step(step)
        torch.nn.utils.clip_grad_norm_(phase.trainable, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        seconds.append(time.perf_counter() - t0)
    return sum(seconds[1:]) / steps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backbone", default="smollm2-135m-instruct")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per setting (after one warm-up step)")
    parser.add_argument("--mntp", default="8x128,8x256,4x512", help="MNTP batch x block length settings")
    parser.add_argument("--simcse", default="32x64,64x64,32x128", help="SimCSE batch x max length settings")
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--lora-dropout", type=float, default=0.05)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    where = transformers_path(args.backbone)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = TeacherBuildConfig(out_dir=tmp, backbone=args.backbone, max_texts=2000, bf16=args.bf16,
                                 gradient_checkpointing=args.gradient_checkpointing, lora_dropout=args.lora_dropout)
        texts = read_texts(cfg)
        print(f"torch threads {torch.get_num_threads()}, {len(texts)} texts, bf16 {args.bf16}, gradient "
              f"checkpointing {args.gradient_checkpointing}, LoRA dropout {args.lora_dropout}")
        print("phase   batch  length  tokens/step  s/step  tokens/s  load avg (1 min)  peak GB")
        mntp = MNTPPhase(replace(cfg, mntp_steps=0), texts, where)  # blocks made per setting below
        for batch, length in grid(args.mntp):
            mntp.cfg = replace(cfg, mntp_batch_size=batch, mntp_max_length=length)
            mntp.blocks = mntp_blocks(mntp.tokenizer, texts, length)
            mntp.special = torch.isin(mntp.blocks, torch.tensor(sorted(set(mntp.tokenizer.all_special_ids))))
            s = timed(mntp, args.steps)
            print(f"mntp    {batch:5d}  {length:6d}  {batch * length:11d}  {s:6.2f}  {batch * length / s:8.0f}  "
                  f"{os.getloadavg()[0]:16.2f}  {peak_gb():7.1f}", flush=True)
        mntp.write(f"{tmp}/mntp")  # an identity adapter: SimCSE's speed does not depend on its values
        del mntp
        for batch, length in grid(args.simcse):
            phase = SimCSEPhase(replace(cfg, simcse_batch_size=batch, simcse_max_length=length), texts, where,
                                f"{tmp}/mntp")
            tokens = sum(len(phase.rows[i]) for i in phase.batch_indices(0)) * 2
            s = timed(phase, args.steps)
            print(f"simcse  {batch:5d}  {length:6d}  {tokens:11d}  {s:6.2f}  {tokens / s:8.0f}  "
                  f"{os.getloadavg()[0]:16.2f}  {peak_gb():7.1f}", flush=True)
            del phase


if __name__ == "__main__":
    main()
