"""Decoding tokens/s at batch 1, 4 and 16, on an idle machine and beside a competing job, for the old and
the new decoding settings side by side (the bundled default, SmolLM2-135M-Instruct, float32, torch).

    .venv/bin/python lab/benchmarks/decode_batch.py [--tokens 24] [--repeats 2] [--out lab/benchmarks/recorded/decode_batch]

Settings:
* old: what `model.decode` did before: transformers' `generate` on the left-padded requests, every row
  of a batch stepped until the last one ends, with torch's thread count (one per core).
* new: `genembed.decoders.generate` as `model.decode` runs it: a row that ends leaves the batch, and the
  thread count follows the cores the other processes leave free (`num_threads=None`).
* new, all cores: the same loop with the thread count fixed at one per core (`num_threads=<cores>`):
  what the thread choice adds.

Batch 1 decodes the first 4 texts one call each; batch 4 those 4 texts in one call; batch 16 16 texts
in one call. The requests (the query lens's, the default decoder) are built once, outside the timing.
tokens/s = the tokens the texts' greedy answers have (each text decoded alone, new setting) / seconds:
the same numerator for every setting. "Busy" runs a competing job beside it: a subprocess doing 512×512
float32 matmuls on 2 torch threads, bounded in time, killed at the end. Each cell is the median of
--repeats runs, settings interleaved. Writes OUT.json and OUT.md.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import genembed  # noqa: E402
from genembed import backends  # noqa: E402
from genembed.decoders import generate, get_decoder, greedy, model_threads  # noqa: E402
from genembed.generate import generate_texts  # noqa: E402
from genembed.inputs import pad  # noqa: E402

TEXTS = [
    "What is the capital of France?", "How do I boil an egg?", "Explain how a neural network learns.",
    "Write a short poem about the sea.", "What are the health benefits of green tea?",
    "How do I reverse a list in Python?", "Why is the sky blue?", "Give me three tips for a job interview.",
    "What causes inflation?", "How does a vaccine work?", "Summarize the plot of Hamlet.",
    "What is the difference between a virus and a bacterium?", "How can I improve my sleep?",
    "Translate 'good morning' into Spanish.", "What is machine learning?", "How do solar panels work?",
]
HOG = ("import time, torch\ntorch.set_num_threads(2)\na = torch.randn(512, 512)\nend = time.time() + {seconds}\n"
       "while time.time() < end:\n    a @ a\n")


def machine() -> str:
    model, flags = "unknown CPU", ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name") and model == "unknown CPU":
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = line
    except OSError:
        pass
    isa = "AVX-512 BF16" if "avx512_bf16" in flags else "AVX-512" if "avx512f" in flags else \
        "AVX2" if "avx2" in flags else "?"
    return f"{model}, {len(os.sched_getaffinity(0))} cores ({isa}), {platform.system()}"


def run_setting(model, name: str, prompts: list, batch: int, tokens: int, cores: int) -> float:
    """Seconds to decode `prompts` `batch` at a time under setting `name`."""
    backbone = model.backbone
    start = time.perf_counter()
    if name == "old":
        generate_texts(backbone, prompts, tokens, batch)
    else:
        model.num_threads = None if name == "new" else cores
        generate(model, prompts, tokens, batch)
    return time.perf_counter() - start


def useful_tokens(model, prompts: list, tokens: int) -> int:
    """Tokens of each prompt's greedy answer, decoded alone."""
    total = 0
    model.num_threads = None
    for p in prompts:
        ids, mask = pad([p], model.backbone.tokenizer.pad_token_id, side="left")
        with model_threads(model):
            total += len(greedy(model, model.backbone.model.get_input_embeddings()(ids), tokens, mask)[0])
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokens", type=int, default=24, help="max_new_tokens of every decode")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--batches", default="1,4,16")
    ap.add_argument("--settings", default="old,new,new-all-cores")
    ap.add_argument("--out", default="lab/benchmarks/recorded/decode_batch")
    ap.add_argument("--rerender", action="store_true", help="rewrite OUT.md from OUT.json, measuring nothing")
    args = ap.parse_args()
    if args.rerender:
        Path(args.out).with_suffix(".md").write_text(table(json.loads(Path(args.out).with_suffix(".json").read_text())))
        return
    batches = [int(b) for b in args.batches.split(",")]
    settings = args.settings.split(",")
    cores = torch.get_num_threads()
    model = genembed.load()
    decoder = get_decoder(model)
    prompts = decoder.prompts(decoder.read(TEXTS))
    sets = {1: prompts[:4], 4: prompts[:4], 16: prompts[:16]}
    with torch.no_grad():
        useful = {b: useful_tokens(model, sets[b], args.tokens) for b in batches}
        run_setting(model, "old", prompts[:2], 2, 2, cores)  # warm both paths
        run_setting(model, "new", prompts[:2], 2, 2, cores)
    rows, hog = [], None
    try:
        for load in ("idle", "busy"):
            if load == "busy":
                hog = subprocess.Popen([sys.executable, "-c", HOG.format(seconds=900)])
                time.sleep(2)
            free = backends.FreeCores(window=0.5)()
            for b in batches:
                times = {s: [] for s in settings}
                for _ in range(args.repeats):
                    for s in settings:
                        with torch.no_grad():
                            times[s].append(run_setting(model, s, sets[b], b, args.tokens, cores))
                for s in settings:
                    secs = statistics.median(times[s])
                    rows.append({"load": load, "batch": b, "setting": s, "seconds": round(secs, 3),
                                 "runs": [round(t, 3) for t in times[s]], "texts": len(sets[b]),
                                 "tokens": useful[b], "tokens_per_s": round(useful[b] / secs, 2),
                                 "free_cores_at_start": None if free is None else round(free, 2)})
                    print(f"{load:5} batch {b:2} {s:14} {secs:8.2f} s  {useful[b] / secs:7.2f} tokens/s", flush=True)
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()
    result = {"command": f"python lab/benchmarks/decode_batch.py --tokens {args.tokens} --repeats {args.repeats}",
              "date": datetime.date.today().isoformat(), "machine": machine(), "torch": torch.__version__,
              "threads": cores, "max_new_tokens": args.tokens, "rows": rows}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text(table(result))
    print(table(result))


def table(result: dict) -> str:
    cells = {(r["load"], r["batch"], r["setting"]): r for r in result["rows"]}
    settings = list(dict.fromkeys(r["setting"] for r in result["rows"]))
    lines = [f"# Decoding tokens/s by batch size, idle and beside a competing job ({result['date']})", "",
             f"`{result['command']}` on {result['machine']}, torch {result['torch']}, {result['threads']} "
             f"threads by default, max_new_tokens {result['max_new_tokens']}, the bundled default (query lens). "
             "Busy: a 2-thread float32 matmul job runs beside it. old: transformers' generate, every row to "
             "the end, one thread per core; new: genembed's loop (ended rows leave the batch), threads = free "
             "cores; new-all-cores: that loop at one thread per core. Median of the runs; batch 1 = the first "
             "4 texts one call each, batch 4 = the same 4 in one call, batch 16 = 16 texts in one call.", "",
             "The machine is shared: \"free cores\" is what the others left free when each load's runs began "
             "(measured from /proc/stat over 0.5 s), so an idle row may have run beside other work too.", "",
             "| load | free cores | batch | " + " | ".join(f"{s} tokens/s" for s in settings) + " | new / old |",
             "|---|---|---|" + "---|" * len(settings) + "---|"]
    for load in ("idle", "busy"):
        for b in sorted({r["batch"] for r in result["rows"]}):
            row = [cells.get((load, b, s)) for s in settings]
            if not any(row):
                continue
            ratio = ""
            if cells.get((load, b, "old")) and cells.get((load, b, "new")):
                ratio = f"{cells[(load, b, 'new')]['tokens_per_s'] / cells[(load, b, 'old')]['tokens_per_s']:.2f}×"
            free = next(c for c in row if c)["free_cores_at_start"]
            lines.append(f"| {load} | {free} | {b} | " + " | ".join(f"{c['tokens_per_s']:.1f}" if c else "–" for c in row)
                         + f" | {ratio} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
