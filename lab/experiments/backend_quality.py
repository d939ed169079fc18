"""Does a fast backend give what backend="torch" (float32) gives? The backends' quality bound, measured.

    .venv/bin/python lab/experiments/backend_quality.py                 # the bundled default (~15 min on 2 cores)
    .venv/bin/python lab/experiments/backend_quality.py --model DIR --texts 1000 --decode-texts 200
    .venv/bin/python lab/experiments/backend_quality.py --backend openvino --bf16 --out lab/experiments/results/backend_quality_openvino_bf16

On the same model, torch in float32 against --backend (onnx or openvino), whose embeddings are made under
bf16 autocast with --bf16 (`encode(bf16=True)`, as `genembed encode --bf16` and `serve --bf16` make them;
decoding has no bf16 switch and stays float32):
* embeddings of --texts held-out ShareGPT queries (the query instruction): each one's cosine to the
  torch one (minimum and mean; bound ≥ 0.995);
* every scored task of `genembed eval` (Q→A, safety, classification, clustering): the score on each
  backend (bound: within 0.005);
* greedy decodes (the model's default decoder, --decode-tokens new tokens) of --decode-texts of those
  queries: the share identical to torch's (bound ≥ 90%), and the share identical over the first 16 tokens.
Writes lab/experiments/results/backend_quality.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import genembed  # noqa: E402
from genembed.data import load_sharegpt  # noqa: E402
from genembed.eval.run import PRIMARY, TASKS, score_task  # noqa: E402


class Student:
    """The eval's student at a chosen precision (the eval's own runs in bf16 autocast)."""

    def __init__(self, model, bf16: bool):
        self.model, self.bf16 = model, bf16

    def encode(self, texts, instruction, side):
        return self.model.encode(texts, instruction=instruction, batch_size=32, bf16=self.bf16)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="checkpoint (default: the bundled one)")
    ap.add_argument("--texts", type=int, default=1000)
    ap.add_argument("--decode-texts", type=int, default=200)
    ap.add_argument("--decode-tokens", type=int, default=48)
    ap.add_argument("--tasks", default="qa,safety,classification,clustering")
    ap.add_argument("--backend", default="onnx", choices=["onnx", "openvino"])
    ap.add_argument("--bf16", action="store_true", help="the backend's embeddings under bf16 autocast")
    ap.add_argument("--out", default=str(ROOT / "lab" / "experiments" / "results" / "backend_quality"))
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    model = genembed.load(args.model)
    queries = [c.query for c in load_sharegpt("heldout")][: args.texts]
    out: dict = {"command": "python lab/experiments/backend_quality.py " + " ".join(argv or sys.argv[1:]),
                 "texts": len(queries), "threads": torch.get_num_threads()}
    emb, seconds, decoded, scores = {}, {}, {}, {}
    fast = args.backend
    out["candidate"] = f"{fast} {'bf16' if args.bf16 else 'float32'} embeddings, float32 decodes"
    for backend in ("torch", fast):
        bf16 = args.bf16 and backend == fast
        model.set_backend(backend)
        model.encode(queries[:32], bf16=bf16)  # warm: the export (first time), sessions, the prefix cache
        start = time.perf_counter()
        emb[backend] = model.encode(queries, batch_size=32, show_progress_bar=True, bf16=bf16)
        seconds[backend] = time.perf_counter() - start
        student = Student(model, bf16)
        scores[backend] = {}
        for name in [t for t in args.tasks.split(",") if t]:
            task = TASKS[name]()
            scores[backend][name] = score_task(student, task)
            print(backend, name, scores[backend][name], flush=True)
        start = time.perf_counter()
        decoded[backend] = model.decode(queries[: args.decode_texts], max_new_tokens=args.decode_tokens)
        seconds[f"decode {backend}"] = time.perf_counter() - start
    a, b = emb["torch"], emb[fast]
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    tok = model.backbone.tokenizer
    head = lambda s: tok(s)["input_ids"][:16]  # noqa: E731
    same = [x == y for x, y in zip(decoded["torch"], decoded[fast])]
    same16 = [head(x) == head(y) for x, y in zip(decoded["torch"], decoded[fast])]
    out.update({
        "cosine": {"min": float(cos.min()), "mean": float(cos.mean())},
        "scores": scores,
        "score_gaps": {t: {k: scores[fast][t][k] - scores["torch"][t][k] for k in scores["torch"][t]}
                       for t in scores["torch"]},
        "decodes": {"texts": len(same), "identical": float(np.mean(same)), "identical_first_16_tokens":
                    float(np.mean(same16)), "differing_examples": [
                        {"torch": x, fast: y} for x, y in zip(decoded["torch"], decoded[fast]) if x != y][:3]},
        "seconds": seconds,
    })
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".json").write_text(json.dumps(out, indent=1, ensure_ascii=False))
    lines = [f"# backend='{fast}' ({out['candidate']}) against backend='torch' (float32), `{out['command']}`", "",
             f"- embeddings of {len(queries)} held-out ShareGPT queries: cosine to torch min "
             f"{cos.min():.7f}, mean {cos.mean():.7f}",
             f"- greedy decodes ({args.decode_tokens} tokens) of {len(same)} of them: {100 * np.mean(same):.1f}% "
             f"identical ({100 * np.mean(same16):.1f}% over the first 16 tokens)", "",
             f"| task | metric | torch | {fast} | gap |", "|---|---|---:|---:|---:|"]
    for t, row in scores["torch"].items():
        for k, v in row.items():
            if k == PRIMARY.get(t) or t == "safety":
                lines.append(f"| {t} | {k} | {v:.4f} | {scores[fast][t][k]:.4f} | {scores[fast][t][k] - v:+.4f} |")
    path.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
