"""Peak memory of `genembed encode --input FILE` as the corpus grows.

For each corpus size, a fresh process runs the command and reports its peak resident set size
(VmHWM) and wall time. Two ways of feeding the same file are measured side by side:
  stream  `genembed encode --input` as shipped: the file is read, tokenized and embedded one
          window at a time and rows are written as they come;
  list    the texts read into a Python list first and `model.encode(texts, output_path=...)`
          (what the CLI did before it streamed).
Flat means the peak of `stream` does not grow with the number of lines.

    .venv/bin/python lab/benchmarks/encode_memory.py                          # tiny model, 100k vs 1M lines
    .venv/bin/python lab/benchmarks/encode_memory.py --model default --lines 2000,20000 --modes stream
"""
from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# runs in the child process: encode the file one way, then print the peak memory as JSON
CHILD = r"""
import json, sys, time
mode, path, model, out, batch = sys.argv[1:6]
start = time.perf_counter()
if mode == "stream":
    from genembed.cli import app
    app(["encode", "--input", path, "--model", model, "--out", out, "--batch-size", batch], standalone_mode=False)
else:
    import genembed
    from genembed.reader import TextFile
    texts = list(TextFile(path))
    genembed.load(None if model == "default" else model).encode(texts, batch_size=int(batch), output_path=out)
seconds = time.perf_counter() - start
with open("/proc/self/status") as f:
    peak = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
print(json.dumps({"peak_mib": peak, "seconds": seconds}))
"""

WORDS = ("the a egg water boil minutes capital france paris poem sea wide blue deep network weights loss "
         "gradient descent passage question answer summary model token layer vector memory file line").split()


def write_corpus(path: Path, lines: int, seed: int = 0) -> None:
    """`lines` sentences of 3–40 words, written in blocks so the writer itself stays small."""
    rng = random.Random(seed)
    with open(path, "w") as f:
        for start in range(0, lines, 10_000):
            f.write("".join(" ".join(rng.choices(WORDS, k=rng.randint(3, 40))) + "\n"
                            for _ in range(min(10_000, lines - start))))


def tiny_checkpoint(folder: Path) -> str:
    from genembed.backbone import load_backbone
    from genembed.checkpoint import save_checkpoint
    from genembed.model import GenEmbed
    from genembed.testing import build_tiny_backbone

    backbone = load_backbone(build_tiny_backbone(folder / "backbone"))
    model = GenEmbed.create(backbone, embedding_dim=384, teacher="self", num_compression_tokens=4)
    return str(save_checkpoint(model, folder / "checkpoint"))


def measure(mode: str, corpus: Path, model: str, out: Path, batch_size: int) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, mode, str(corpus), model, str(out), str(batch_size)],
                          capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"{mode} on {corpus} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", default="100000,1000000", help="Corpus sizes, comma-separated.")
    ap.add_argument("--model", default="tiny",
                    help="'tiny' (a random 2-layer llama built here, 384-dim output), 'default' (the bundled "
                         "checkpoint) or a checkpoint folder.")
    ap.add_argument("--modes", default="stream,list")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--out", type=Path, default=ROOT / "lab" / "reports" / "encode-memory",
                    help="Writes OUT.md and OUT.json.")
    args = ap.parse_args(argv)
    sizes = [int(n) for n in args.lines.split(",")]
    modes = args.modes.split(",")
    if set(modes) - {"stream", "list"}:
        raise SystemExit(f"--modes: choose from stream,list (got {args.modes})")
    rows = []
    with tempfile.TemporaryDirectory(prefix="genembed-encode-memory-") as tmp:
        tmp = Path(tmp)
        model = tiny_checkpoint(tmp) if args.model == "tiny" else args.model
        for n in sizes:
            corpus = tmp / f"corpus-{n}.txt"
            write_corpus(corpus, n)
            for mode in modes:
                result = measure(mode, corpus, model, tmp / "out.npy", args.batch_size)
                rows.append({"mode": mode, "lines": n, "input_mib": corpus.stat().st_size / 2**20, **result})
                print(f"{mode:>6} {n:>9,} lines: peak RSS {result['peak_mib']:7.1f} MiB, {result['seconds']:6.1f} s",
                      flush=True)
            corpus.unlink()
    table = ["| mode | lines | input (MiB) | peak RSS (MiB) | × smallest | wall (s) | lines/s |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        first = next(x for x in rows if x["mode"] == r["mode"])
        table.append(f"| {r['mode']} | {r['lines']:,} | {r['input_mib']:.1f} | {r['peak_mib']:.1f} | "
                     f"{r['peak_mib'] / first['peak_mib']:.2f} | {r['seconds']:.1f} | {r['lines'] / r['seconds']:,.0f} |")
    command = "python lab/benchmarks/encode_memory.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = (f"# Peak memory of `genembed encode --input` by corpus size\n\n`{command.strip()}` "
            f"(model: {args.model}, batch {args.batch_size}; one fresh process per row, VmHWM)\n\n"
            + "\n".join(table) + "\n")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(text)
    args.out.with_suffix(".json").write_text(json.dumps({"command": command, "model": args.model,
                                                         "batch_size": args.batch_size, "rows": rows}, indent=1))
    print(text)
    return rows


if __name__ == "__main__":
    main()
