"""How far the student reads at encode time: the bundled default at its 128 tokens against the same weights at 256.

The default was trained on queries cut at 128 tokens (TrainConfig.max_query_tokens) and its checkpoint
records that as max_text_tokens, so it also encodes every text cut there (in its chat layout the cut applies to the text
alone), while its teacher on the input reads 256 word pieces. This scores the same weights at both
lengths on the benchmark's selection set in one run, and first prints, per task, the share of its texts
the 128-token cut shortens (only those can move). --shares SET prints only those shares, for SET's tasks.

    .venv/bin/python lab/experiments/encode_length.py --out runs/bench-len256
    .venv/bin/python lab/experiments/encode_length.py --out - --shares report
"""
from __future__ import annotations

import argparse

import genembed
from genembed.eval import benchmark
from genembed.eval.methods import Student
from genembed.inputs import plain_ids


def cut_share(model, task) -> float:
    """The share of a task's texts longer than the model's cut (in the chat layout the cut applies to the
    text alone, whatever its instruction)."""
    if model.config.input_layout != "chat":
        raise ValueError("this counts cuts of the chat layout (the default's)")
    names = ("texts1", "texts2", "texts", "queries", "corpus")
    texts = [t for k in names if isinstance(getattr(task, k, None), list) for t in getattr(task, k)]
    texts += [c for cands in getattr(task, "candidates", None) or [] for c in cands]
    lengths = [len(ids) for ids in plain_ids(model.backbone.tokenizer, texts)]
    return sum(n > model.config.max_text_tokens for n in lengths) / len(lengths)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--backend", default="onnx")
    ap.add_argument("--shares", metavar="SET", help="only print the shares the cut shortens, for every task of SET")
    a = ap.parse_args()
    short = genembed.load(backend=a.backend)
    names = benchmark.task_names([a.shares or "selection"])
    for name in names:
        print(f"{name:<20} texts cut at {short.config.max_text_tokens} tokens: {cut_share(short, benchmark.TASKS[name].load()):.2f}",
              flush=True)
    if a.shares:
        return
    longer = genembed.load(backend=a.backend)
    longer.max_seq_length = a.tokens
    methods = [Student(short, "genembed default", bf16=False), Student(longer, f"genembed default, {a.tokens} tokens", bf16=False)]
    results = benchmark.run(methods, names, a.out)
    for m in methods:
        s = benchmark.summary(results["methods"][m.name], "selection")
        print(f"{m.name}: mean of type means {s['mean']:.4f}", {t: round(v, 3) for t, v in s["types"].items()})


if __name__ == "__main__":
    main()
