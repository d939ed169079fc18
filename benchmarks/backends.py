"""genembed's inference backends against the official code, side by side in one run, on one checkpoint.

    .venv/bin/python benchmarks/backends.py                       # ~25 min on 2 cores
    .venv/bin/python benchmarks/backends.py --texts 16 --doc-texts 4 --decode-tokens 8 --repeats 1 --out runs/backends-smoke

The checkpoint and the short texts are run.py's (an official-layout folder that the official code
builds; ShareGPT queries): this script calls `run.py --out OUT` with every phase skipped to make
them when OUT has none. Then, each in its own process, with the same threads:

* official, float32 and bf16 autocast (its `run_config` loads bf16 weights; on a CPU without bf16
  instructions autocast is its fastest bf16 path);
* genembed, backends torch, onnx and openvino in float32; and backends torch and openvino with bf16
  autocast where bf16 is native (`genembed.backbone.bf16_is_native`: a CPU with AVX-512 BF16 / AMX),
  the counterparts of the official code's bf16 there. The openvino rows are skipped, with one line,
  where openvino is not installed (pip install 'genembed[openvino]').

Each measures encode of the short texts (batch --batch-size), encode of --doc-texts documents of
exactly 256 tokens (ShareGPT answers cut to 256 tokens), the peak RSS of encode, and decoding one
text (batch 1, --decode-tokens new tokens: tokens/s). Writes OUT/backends.{json,md}.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(ROOT))

import run as bench  # noqa: E402

RUNS = [("official", "fp32", None), ("official", "bf16", None), ("genembed", "fp32", "torch"),
        ("genembed", "fp32", "onnx"), ("genembed", "fp32", "openvino"), ("genembed", "bf16", "torch"),
        ("genembed", "bf16", "openvino")]


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(HERE / "results-backends"))
    ap.add_argument("--texts", type=int, default=256, help="short texts (run.py's ShareGPT queries)")
    ap.add_argument("--doc-texts", type=int, default=64, help="256-token documents")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--decode-tokens", type=int, default=96)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--resume", action="store_true", help="keep every measurement already in OUT/raw")
    ap.add_argument("--official-dtypes", default="fp32,bf16",
                    help="the official code's precisions to run (bf16 autocast is emulated, and slow, on a CPU "
                         "without bf16 instructions)")
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
        rows[f"{impl} {backend or ''} {dtype}".replace("  ", " ")] = {
            "short": worker(impl, backend, f"encode:{dtype}", short, out, args),
            "docs": worker(impl, backend, f"encode:{dtype}", docs, out, args),
            "decode": worker(impl, backend, f"decode:{dtype}", one, out, args),
        }
    (out / "backends.json").write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))
    md = render(rows, args)
    (out / "backends.md").write_text(md)
    print(md)
    return 0


def render(rows: dict, args) -> str:
    official = [r for n, r in rows.items() if n.startswith("official")]
    best = {k: max(r[k][m] for r in official) for k, m in (("short", "texts_per_s"), ("docs", "texts_per_s"),
                                                           ("decode", "tokens_per_s"))}
    lines = [f"threads {args.threads}; short texts: {args.texts} ShareGPT queries, batch {args.batch_size}; documents: "
             f"{args.doc_texts} of 256 tokens; decoding one text: {args.decode_tokens} new tokens at most; "
             f"median of {args.repeats}. Ratios: against the official code's faster precision on each column.", "",
             "| path | short texts/s | × | 256-token docs/s | × | decode one text, tokens/s | × | encode peak RSS, MiB |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in rows.items():
        s, d, g = r["short"]["texts_per_s"], r["docs"]["texts_per_s"], r["decode"]["tokens_per_s"]
        lines.append(f"| {name} | {s:.1f} | {s / best['short']:.2f} | {d:.2f} | {d / best['docs']:.2f} | {g:.1f} | "
                     f"{g / best['decode']:.2f} | {max(r['short']['peak_rss_mib'], r['docs']['peak_rss_mib']):.0f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
