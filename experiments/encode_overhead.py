"""Where the student's batched encode cost goes, next to a plain pass over the bare query.

The evaluation's cost sample (the first 64 held-out ShareGPT queries, cut to 128 tokens) is
encoded in batches of 16, bf16, by: the backbone over the bare text (the mean-pool baseline: no
chat template, no instruction, no special tokens), and the bundled student with and without its
shared-head cache. Each timing is the best of two. The bare pass is a floor for any method that
runs this backbone over the query, so HyDE's cost ÷ that floor bounds the batched gap any such
method can reach on this machine.

    .venv/bin/python experiments/encode_overhead.py
"""
import time

import numpy as np

import genembed
from genembed.eval.datasets import sharegpt_qa
from genembed.eval.methods import MAX_TEXT_TOKENS
from genembed.inputs import chat_wrapping, prompt_ids
from genembed.teachers import SelfTeacher

REPEATS = 2

model = genembed.load()
texts = sharegpt_qa(n_queries=64).queries
tok = model.backbone.tokenizer
rows = prompt_ids(tok, texts, model.resolve_instruction("query"), model.config.max_text_tokens)
bare = tok(texts, add_special_tokens=False, truncation=True, max_length=MAX_TEXT_TOKENS)["input_ids"]
pool = SelfTeacher(model.backbone, max_tokens=MAX_TEXT_TOKENS, bf16=True)
model.encode(texts[:16], batch_size=16, bf16=True)  # warm-up (and the shared head enters the cache)
pool.embed(texts[:16])


def seconds_per_1k(encode) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        encode()
        best = min(best, time.perf_counter() - start)
    return 1000 * best / len(texts)


def student(cache: bool):
    model.prefix_cache.enabled = cache
    return model.encode(texts, batch_size=16, bf16=True)


special = model.config.num_thought_tokens + model.config.num_compression_tokens
wrapping = len(prompt_ids(tok, [""], model.resolve_instruction("query"))[0])  # template + instruction, no text
cached = wrapping - len(chat_wrapping(tok)[1])  # all but the template's closing tokens (after the text)
bare_tokens = float(np.mean([len(r) for r in bare]))
input_tokens = float(np.mean([len(r) for r in rows])) + special
timings = [("backbone over the bare query (mean-pool)", bare_tokens, seconds_per_1k(lambda: pool.embed(texts))),
           ("student, shared-head cache on (default)", input_tokens - cached, seconds_per_1k(lambda: student(True))),
           ("student, shared-head cache off", input_tokens, seconds_per_1k(lambda: student(False)))]
floor = timings[0][2]
print(f"{len(texts)} queries, batches of 16, bf16. Student input: {input_tokens:.1f} tokens per query, of which "
      f"{wrapping} template + instruction ({cached} in the shared head) and {special} special tokens; "
      f"bare query: {bare_tokens:.1f}\n")
print("| pass | tokens run per query | s / 1k queries | ÷ bare pass |\n|---|---|---|---|")
for name, tokens, seconds in timings:
    print(f"| {name} | {tokens:.1f} | {seconds:.1f} | {seconds / floor:.2f} |")
