"""The answered queries of a responses file, with each answer replaced by ShareGPT's own recorded one.

ShareGPT records, for each conversation, the first answer its assistant (ChatGPT) gave. The train split
ships those answers inside the same package the queries come from, so this swaps the answerer (SmolLM2-135M
for a far larger model) while keeping every query, its order and its id. A query whose conversation records
no answer keeps an empty one, which training skips (generate.read_responses). A third argument N cuts
each answer to its first N tokens of the backbone's tokenizer, the length SmolLM2's answers are made at.

    .venv/bin/python lab/experiments/real_answers.py runs/recipes/data/train.jsonl runs/recipes/data-real/train.jsonl
    .venv/bin/python lab/experiments/real_answers.py runs/recipes/data/train.jsonl runs/recipes/data-real64/train.jsonl 64
"""
from __future__ import annotations

import json
import sys

from genembed.atomic import write_text
from genembed.data import load_sharegpt
from genembed.jsonl import read_rows


def main(src: str, dst: str, max_tokens: str | None = None) -> None:
    answers = {c.id: c.answer for c in load_sharegpt("train")}
    rows = read_rows(src)
    missing = [r["id"] for r in rows if r["id"] not in answers]
    if missing:
        raise SystemExit(f"{src}: {len(missing)} ids are not in ShareGPT's train split (first: {missing[0]})")
    out = [{"id": r["id"], "query": r["query"], "response": answers[r["id"]], "finished": True} for r in rows]
    if max_tokens is not None:  # "finished" as generate.py writes it: False where the cut shortened the answer
        from genembed.backbone import load_backbone

        tok, n = load_backbone("smollm2-135m-instruct").tokenizer, int(max_tokens)
        for r in out:
            ids = tok(r["response"], add_special_tokens=False)["input_ids"]
            r["response"], r["finished"] = tok.decode(ids[:n]).strip(), len(ids) <= n
    write_text(dst, "".join(json.dumps(r) + "\n" for r in out))  # whole or not at all: broad_recipes.sh skips a file that exists
    kept = sum(bool(r["response"].strip()) for r in out)
    words = sorted(len(r["response"].split()) for r in out if r["response"].strip())
    print(f"{dst}: {len(out)} rows, {kept} with a recorded answer (median {words[len(words) // 2]} words)")


if __name__ == "__main__":
    main(*sys.argv[1:])
