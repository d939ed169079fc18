"""How far the student reads at encode time: the bundled default at its 128 tokens against the same weights at 256.

The default was trained on queries cut at 128 tokens (TrainConfig.max_query_tokens) and its checkpoint
records that as max_text_tokens, so it also encodes every text cut there (instruction and special tokens
included), while its teacher on the input reads 256 word pieces. This scores the same weights at both
lengths on the benchmark's selection set in one run, and first prints, per task, the share of its texts
the 128-token cut shortens (only those can move).

    .venv/bin/python experiments/encode_length.py --out runs/bench-len256
"""
from __future__ import annotations

import argparse

import genembed
from genembed.eval import benchmark
from genembed.eval.methods import Student


def cut_share(model, task) -> float:
    """The share of a task's texts (under their instruction) whose ids the model's cut shortens."""
    groups = [(getattr(task, "instruction", None), getattr(task, k, None)) for k in ("texts1", "texts2", "texts")]
    groups += [(getattr(task, "query_instruction", None), getattr(task, "queries", None)),
               (getattr(task, "document_instruction", None), getattr(task, "corpus", None))]
    if getattr(task, "candidates", None):
        groups.append((task.document_instruction, [c for cands in task.candidates for c in cands]))
    texts = [(ins, t) for ins, ts in groups if isinstance(ts, list) for t in ts if isinstance(t, str)]
    if not texts:
        return float("nan")
    cut = model.config.max_text_tokens
    long = 0
    for ins, t in texts:
        whole = model.backbone.tokenizer(t, add_special_tokens=False)["input_ids"]
        shown = model.token_rows([t], model.resolve_instruction(ins))[0]
        long += len(shown) >= cut and len(whole) > len(shown)
    return long / len(texts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--backend", default="onnx")
    a = ap.parse_args()
    short = genembed.load(backend=a.backend)
    longer = genembed.load(backend=a.backend)
    longer.config.max_text_tokens = a.tokens
    names = benchmark.task_names(["selection"])
    for name in names:
        print(f"{name:<20} texts cut at {short.config.max_text_tokens} tokens: {cut_share(short, benchmark.TASKS[name].load()):.2f}",
              flush=True)
    methods = [Student(short, "genembed default"), Student(longer, f"genembed default, {a.tokens} tokens")]
    for m in methods:
        m.bf16 = False
    results = benchmark.run(methods, names, a.out)
    for m in methods:
        s = benchmark.summary(results["methods"][m.name], "selection")
        print(f"{m.name}: mean of type means {s['mean']:.4f}", {t: round(v, 3) for t, v in s["types"].items()})


if __name__ == "__main__":
    main()
