"""The alignment term of every recorded training log: mean over the first 5 steps, over steps 80-130
(where the tokens' learning rate peaks after a 30- or 60-step warm-up), and over the last 100 steps.
    usage: python lab/experiments/align_curve.py [LOG ...]   (default: lab/experiments/results/*train-log.jsonl)"""
import glob
import sys

import numpy as np

from genembed.jsonl import read_rows

paths = sys.argv[1:] or sorted(glob.glob("lab/experiments/results/*train-log.jsonl"))
print(f"{'log':<44} {'first 5':>8} {'80-130':>8} {'last 100':>9}")
for path in paths:
    values = [row["align"] for row in read_rows(path) if row.get("align") is not None]
    if len(values) < 200:
        continue
    print(f"{path.split('/')[-1]:<44} {np.mean(values[:5]):8.5f} {np.mean(values[80:130]):8.5f} {np.mean(values[-100:]):9.5f}")
