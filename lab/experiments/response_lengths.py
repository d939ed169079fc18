"""How long are the answers a training run reconstructs?

For each training-rows file: the share of answers the answering run cut at its new-token cap
(`finished` false), and the length of the answers in tokens as training tokenizes them (the decoded
text, tokenized again), with the share that reaches a given reconstruction length.

    .venv/bin/python lab/experiments/response_lengths.py runs/default/train.jsonl [more.jsonl ...] [--cap 64]
"""
import argparse

import numpy as np

from genembed.backbone import load_backbone
from genembed.jsonl import read_rows
from genembed.recipe import TrainConfig

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("rows", nargs="+")
parser.add_argument("--cap", type=int, default=TrainConfig.max_response_tokens,
                    help="reconstruction length to count answers against (training's max_response_tokens)")
args = parser.parse_args()
tokenizer = load_backbone(TrainConfig.backbone).tokenizer
print(f"| rows | answers | cut at the new-token cap | tokens p5 / p50 / p95 | ≥ {args.cap} tokens |\n|---|---|---|---|---|")
for path in args.rows:
    rows = read_rows(path)
    lengths = np.array([len(ids) for ids in tokenizer([r["response"] for r in rows], add_special_tokens=False)["input_ids"]])
    cut = np.mean([not r["finished"] for r in rows])
    p5, p50, p95 = np.percentile(lengths, [5, 50, 95])
    print(f"| {path} | {len(rows)} | {cut:.1%} | {p5:.0f} / {p50:.0f} / {p95:.0f} | {np.mean(lengths >= args.cap):.1%} |")
