"""The README's decoded examples: what the bundled default's query lens decodes for a few held-out
queries (the ones `genembed eval`'s decoding task keeps as examples) and one training query, with
the nearest training query it read and the real answer.

    .venv/bin/python lab/experiments/decoded_examples.py       # -> lab/reports/decoded-examples.md

Greedy, 48 new tokens, through genembed.inspection.inspect (what `genembed inspect` prints).
"""
from pathlib import Path

import numpy as np

import genembed
from genembed import inspection
from genembed.eval.decoding import EXAMPLES, sharegpt_decoding


def cut(text: str, n: int) -> str:
    text = " ".join(text.split()).replace("|", "\\|")
    return text[:n] + ("…" if len(text) > n else "")


task = sharegpt_decoding()
picks = np.unique(np.linspace(0, len(task.queries) - 1, EXAMPLES).astype(int))  # as the eval keeps them
queries = [task.queries[i] for i in picks] + ["How do I boil an egg?"]
answers = [task.corpus[task.relevant[i][0]] for i in picks] + [None]
model = genembed.load()
rows = ["| query | nearest training query (cosine) | decoded (greedy, cut) | real answer (cut) |", "|---|---|---|---|"]
for item, answer in zip(inspection.inspect(model, queries), answers):
    near = f"{cut(item.nearest_query[0], 100)} ({item.nearest_query[1]:.2f})" if item.nearest_query else "–"
    held = "" if answer is not None else " (a training query, not held out)"
    rows.append(f"| {cut(item.text, 100)}{held} | {near} | {cut(item.decoded, 160)} | "
                f"{cut(answer, 100) if answer else '–'} |")
out = Path("lab/reports/decoded-examples.md")
out.write_text("# Decoded examples of the bundled default\n\n`.venv/bin/python lab/experiments/decoded_examples.py`: "
               "the held-out queries `genembed eval`'s decoding task keeps as examples, and one training query; "
               "each read through the default's query lens (its nearest training query and words), decoded by the "
               "frozen LLM.\n\n" + "\n".join(rows) + "\n")
print(out.read_text())
