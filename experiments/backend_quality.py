"""Does backend="onnx" give what backend="torch" (float32) gives? Issue 26's quality bound, measured.

    .venv/bin/python experiments/backend_quality.py                 # the bundled default (~15 min on 2 cores)
    .venv/bin/python experiments/backend_quality.py --model DIR --texts 1000 --decode-texts 200

On the same model, both backends in float32:
* embeddings of --texts held-out ShareGPT queries (the query instruction): each one's cosine to the
  torch one (minimum and mean; bound ≥ 0.995);
* every scored task of `genembed eval` (Q→A, safety, classification, clustering): the score on each
  backend (bound: within 0.005);
* greedy decodes (the model's default decoder, --decode-tokens new tokens) of --decode-texts of those
  queries: the share identical to torch's (bound ≥ 90%), and the share identical over the first 16 tokens.
Writes experiments/results/backend_quality.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import genembed  # noqa: E402
from genembed.data import load_sharegpt  # noqa: E402
from genembed.eval.run import PRIMARY, TASKS, score_task  # noqa: E402


class Float32Student:
    """The eval's student, in float32 (the eval's own runs in bf16 autocast)."""

    def __init__(self, model):
        self.model = model

    def encode(self, texts, instruction, side):
        return self.model.encode(texts, instruction=instruction, batch_size=32)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="checkpoint (default: the bundled one)")
    ap.add_argument("--texts", type=int, default=1000)
    ap.add_argument("--decode-texts", type=int, default=200)
    ap.add_argument("--decode-tokens", type=int, default=48)
    ap.add_argument("--tasks", default="qa,safety,classification,clustering")
    ap.add_argument("--out", default=str(ROOT / "experiments" / "results" / "backend_quality"))
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    model = genembed.load(args.model)
    queries = [c.query for c in load_sharegpt("heldout")][: args.texts]
    out: dict = {"command": "python experiments/backend_quality.py " + " ".join(argv or sys.argv[1:]),
                 "texts": len(queries), "threads": torch.get_num_threads()}
    emb, seconds, decoded, scores = {}, {}, {}, {}
    for backend in ("torch", "onnx"):
        model.set_backend(backend)
        model.encode(queries[:32])  # warm: the export (first time), sessions, the prefix cache
        start = time.perf_counter()
        emb[backend] = model.encode(queries, batch_size=32, show_progress_bar=True)
        seconds[backend] = time.perf_counter() - start
        student = Float32Student(model)
        scores[backend] = {}
        for name in [t for t in args.tasks.split(",") if t]:
            task = TASKS[name]()
            scores[backend][name] = score_task(student, task)
            print(backend, name, scores[backend][name], flush=True)
        start = time.perf_counter()
        decoded[backend] = model.decode(queries[: args.decode_texts], max_new_tokens=args.decode_tokens)
        seconds[f"decode {backend}"] = time.perf_counter() - start
    a, b = emb["torch"], emb["onnx"]
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    tok = model.backbone.tokenizer
    head = lambda s: tok(s)["input_ids"][:16]  # noqa: E731
    same = [x == y for x, y in zip(decoded["torch"], decoded["onnx"])]
    same16 = [head(x) == head(y) for x, y in zip(decoded["torch"], decoded["onnx"])]
    out.update({
        "cosine": {"min": float(cos.min()), "mean": float(cos.mean())},
        "scores": scores,
        "score_gaps": {t: {k: scores["onnx"][t][k] - scores["torch"][t][k] for k in scores["torch"][t]}
                       for t in scores["torch"]},
        "decodes": {"texts": len(same), "identical": float(np.mean(same)), "identical_first_16_tokens":
                    float(np.mean(same16)), "differing_examples": [
                        {"torch": x, "onnx": y} for x, y in zip(decoded["torch"], decoded["onnx"]) if x != y][:3]},
        "seconds": seconds,
    })
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".json").write_text(json.dumps(out, indent=1, ensure_ascii=False))
    lines = [f"# backend='onnx' against backend='torch' (float32), `{out['command']}`", "",
             f"- embeddings of {len(queries)} held-out ShareGPT queries: cosine to torch min "
             f"{cos.min():.7f}, mean {cos.mean():.7f}",
             f"- greedy decodes ({args.decode_tokens} tokens) of {len(same)} of them: {100 * np.mean(same):.1f}% "
             f"identical ({100 * np.mean(same16):.1f}% over the first 16 tokens)", "",
             "| task | metric | torch | onnx | gap |", "|---|---|---:|---:|---:|"]
    for t, row in scores["torch"].items():
        for k, v in row.items():
            if k == PRIMARY.get(t) or t == "safety":
                lines.append(f"| {t} | {k} | {v:.4f} | {scores['onnx'][t][k]:.4f} | {scores['onnx'][t][k] - v:+.4f} |")
    path.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
