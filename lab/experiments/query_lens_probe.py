"""Decode through the nearest training query: a screen, no training (a departure from the paper).

The word lens (genembed/word_lens.py) turns an embedding into its nearest *words*; they carry the
topic, not the task. The training rows hold whole requests, task included, and the student has
already been trained to place each where the teacher puts its answer. Here an embedding decodes
through the training query whose embedding (or whose answer's teacher vector) is nearest: the
frozen LLM answers that query, and the answer is the decoded text. Only unlabeled training rows
enter (the same ones training used); the held-out queries are a different split.
Scored like the decoding task (genembed/eval/decoding.py) on the first --n held-out queries.
usage: python lab/experiments/query_lens_probe.py [--n 120] [--bank student|teacher] [--words 0]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from genembed.decoders import answer_cross_entropy
from genembed.eval import decoding as D
from genembed.generate import generate_texts
from genembed.inputs import prompt_ids, response_ids
from genembed.jsonl import read_rows
from genembed.word_lens import WordLens, request_ids

from word_lens_probe import held_out_setup


def training_rows(where: str) -> list[dict]:
    """The training rows' queries (a responses JSONL), or with "sharegpt" every training-split query."""
    if where == "sharegpt":
        from genembed.data import load_sharegpt

        return [{"query": c.query, "response": c.answer} for c in load_sharegpt("train")]
    return [r for r in read_rows(where) if r["query"].strip()]


def bank_vectors(m, teacher, rows, kind: str, cache: Path) -> np.ndarray:
    """Unit vectors of the training rows: the student's embedding of each query, or the teacher's
    vector of each answer (what alignment aimed the query's embedding at). Cached on disk."""
    path = cache / f"query-lens-{kind}-{len(rows)}.npy"
    if path.exists():
        return np.load(path)
    if kind == "student":
        v = m.encode([r["query"] for r in rows], instruction="query", batch_size=16, bf16=True, normalize=True,
                     show_progress_bar=True)
    else:
        v = teacher.embed([r["response"] for r in rows], show_progress_bar=True)
        v = v / np.linalg.norm(v, axis=1, keepdims=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, v)
    return v


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--n", type=int, default=120)
    ap.add_argument("--train", default="runs/default/train.jsonl")
    ap.add_argument("--bank", default="student", choices=["student", "teacher"])
    ap.add_argument("--words", type=int, default=0, help="append the embedding's nearest words to the request")
    ap.add_argument("--query-tokens", type=int, default=96, help="the training query is cut to this many tokens")
    args = ap.parse_args()
    m, task, teacher = held_out_setup(args.model)
    tok = m.backbone.tokenizer
    rows = training_rows(args.train)
    assert not set(task.queries) & {r["query"] for r in rows}, "held-out queries must not be training queries"
    bank = bank_vectors(m, teacher, rows, args.bank, Path("runs/experiments/query-lens"))
    n = args.n
    queries = task.queries[:n]
    answers = response_ids(tok, task.answers(m.backbone)[:n], D.RESPONSE_TOKENS)
    emb = m.encode(queries, instruction=task.query_instruction, batch_size=16, bf16=True, normalize=True)

    def requests(e):
        nearest = (e @ bank.T).argmax(1)
        cut = [tok.decode(tok(rows[j]["query"], add_special_tokens=False).input_ids[:args.query_tokens]) for j in nearest]
        if args.words:
            words = WordLens.for_model(m).nearest(e, args.words)
            cut = [f"{q}\n(About: {', '.join(w for w, _ in ws)}.)" for q, ws in zip(cut, words)]
        return cut

    t0 = time.time()
    own = requests(emb)
    decoded = generate_texts(m.backbone, request_ids(tok, own), D.DECODE_TOKENS, batch_size=16, bf16=True)
    seconds = time.time() - t0
    mean_request = requests(emb.mean(0, keepdims=True))[0]
    chats = {key: prompt_ids(tok, w, max_text_tokens=512) for key, w in
             (("own", own), ("other", own[1:] + own[:1]), ("mean", [mean_request] * n))}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ce = {key: answer_cross_entropy(m.backbone, v, answers, 16) for key, v in chats.items()}
    sub = D.DecodingTask("sub", queries, task.corpus, task.relevant[:n])
    ret = D._retrieval(sub, teacher, decoded)
    print(f"bank {args.bank} words {args.words}: {seconds:.0f} s of decoding",
          {**{k: round(v, 3) for k, v in ce.items()}, "gap other": round(ce["other"] - ce["own"], 3),
           "gap mean": round(ce["mean"] - ce["own"], 3), **{k: round(v, 3) for k, v in ret.items()},
           "distinct requests": len(set(own)) / n}, flush=True)
    for i in range(0, n, max(1, n // 4)):
        print("  Q:", queries[i][:90].replace("\n", " "), "\n    P:", own[i][:150].replace("\n", " "),
              "\n    D:", decoded[i][:150].replace("\n", " "))


if __name__ == "__main__":
    main()
