"""Where `genembed encode "hello"` and a one-text `genembed decode` spend their time, on the bundled
default: wall time of each command in fresh processes, then one in-process breakdown by phase.

    .venv/bin/python lab/benchmarks/startup.py                 # 3 runs of each command + the breakdown
    .venv/bin/python lab/benchmarks/startup.py --first         # also the very first call, into an empty cache

The first call into an empty cache de-quantises the GGUF once (and the first decode keeps the query
lens's texts and the teacher's word vectors in the cache); the figures without --first are the calls
after it, which is what a user meets every day. Writes lab/benchmarks/recorded/startup.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "lab" / "benchmarks" / "recorded" / "startup"
DECODE = ["decode", "How do I boil an egg?", "--max-new-tokens", "48"]
PHASES = r"""
import json, time
t = [time.perf_counter()]
import genembed; t.append(time.perf_counter())
import torch, transformers; t.append(time.perf_counter())
model = genembed.load(); t.append(time.perf_counter())
model.encode(["hello"]); t.append(time.perf_counter())
from genembed.decoders import get_decoder
decoder = get_decoder(model); t.append(time.perf_counter())
model.query_lens.queries; t.append(time.perf_counter())
model.decode("How do I boil an egg?", max_new_tokens=48); t.append(time.perf_counter())
names = ["import genembed", "import torch + transformers", "load the checkpoint and backbone", "first encode",
         "teacher and word lens (decode only)", "query lens texts (decode only)", "decoding 48 tokens"]
print(json.dumps({n: b - a for n, a, b in zip(names, t, t[1:])}))
"""


def timed(args: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run([str(Path(sys.executable).parent / "genembed"), *args], env=env, check=True, capture_output=True,
                   cwd=ROOT)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--first", action="store_true", help="Also time the first calls, into an empty cache.")
    args = ap.parse_args()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    result = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.processor() or platform.machine()}, "
              f"{os.cpu_count()} cores", "load_before": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="genembed-startup-") as tmp:
        out = str(Path(tmp) / "v.npy")
        if args.first:
            fresh = {**env, "GENEMBED_CACHE": str(Path(tmp) / "cache")}
            result["first encode (empty cache)"] = timed(["encode", "hello", "--out", out], fresh)
            result["first decode (empty lens and word cache)"] = timed(DECODE, fresh)
        timed(["encode", "hello", "--out", out], env)  # warm the caches this machine uses
        timed(DECODE, env)
        result["encode"] = [timed(["encode", "hello", "--out", out], env) for _ in range(args.runs)]
        result["decode"] = [timed(DECODE, env) for _ in range(args.runs)]
    done = subprocess.run([sys.executable, "-c", PHASES], env=env, check=True, capture_output=True, text=True, cwd=ROOT)
    result["phases"] = json.loads(done.stdout.strip().splitlines()[-1])
    result["load_after"] = os.getloadavg()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.with_suffix(".json").write_text(json.dumps(result, indent=1))
    lines = [f"# Start-up of the bundled default ({result['date']}; {result['machine']}; load average before "
             f"{result['load_before'][0]:.2f})", "",
             "| command, fresh process | seconds (each run) |", "|---|---|"]
    for key in ("first encode (empty cache)", "first decode (empty lens and word cache)"):
        if key in result:
            lines.append(f"| {key} | {result[key]:.1f} |")
    lines.append(f"| `genembed encode hello` | {', '.join(f'{t:.1f}' for t in result['encode'])} |")
    lines.append(f"| `genembed decode \"How do I boil an egg?\" --max-new-tokens 48` | "
                 f"{', '.join(f'{t:.1f}' for t in result['decode'])} |")
    lines += ["", "| phase (one process, after the caches are warm) | seconds |", "|---|---|"]
    lines += [f"| {name} | {seconds:.2f} |" for name, seconds in result["phases"].items()]
    OUT.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
