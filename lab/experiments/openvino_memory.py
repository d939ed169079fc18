"""Where the openvino backend's memory goes during encode, and what batch_size does to it.

    .venv/bin/python lab/experiments/openvino_memory.py [--texts 128] [--batch-sizes 8,16,32]

The bundled default, held-out ShareGPT queries. Each (backend, precision, batch size) runs in a fresh
process, which reads /proc/self/status after each stage: the model loaded (torch), the backend attached
(export checked), the first encode (the graph compiled), then encode of TEXTS queries twice. RSS is split
into anonymous memory (the process's own) and file-backed pages (mapped weights: the torch checkpoint and
the export, which the kernel can drop and reread). Peak is VmHWM. Seconds are wall time of the two
encodes: only comparable within one run on an otherwise idle machine.
Writes lab/experiments/results/openvino_memory.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "lab" / "experiments" / "results" / "openvino_memory"
sys.path.insert(0, str(ROOT / "lab" / "benchmarks"))

from bench_common import _status_kb  # noqa: E402  (the benchmarks' /proc/self/status reader)


def status() -> dict:
    return {key: _status_kb(key) // 1024 for key in ("VmRSS", "VmHWM", "RssAnon", "RssFile")}


def child(backend: str, bf16: bool, batch_size: int, texts: int) -> dict:
    sys.path.insert(0, str(ROOT))
    import genembed
    from genembed.data import load_sharegpt

    queries = [c.query for c in load_sharegpt("heldout")][:texts]
    stages = {"start": status()}
    model = genembed.load(backend=backend)
    stages["attached"] = status()
    model.encode(queries[:2], batch_size=batch_size, bf16=bf16)
    stages["compiled"] = status()
    start = time.perf_counter()
    for _ in range(2):
        model.encode(queries, batch_size=batch_size, bf16=bf16)
    seconds = time.perf_counter() - start
    stages["encoded"] = status()
    return {"backend": backend, "bf16": bf16, "batch_size": batch_size, "texts": texts,
            "seconds": round(seconds, 2), "stages": stages}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--texts", type=int, default=128)
    ap.add_argument("--batch-sizes", default="8,16,32")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        backend, precision, batch = args.child.split(":")
        print(json.dumps(child(backend, precision == "bf16", int(batch), args.texts)))
        return
    from genembed.backbone import bf16_is_native

    precisions = ["fp32", "bf16"] if bf16_is_native() else ["fp32"]
    runs = [("torch", p, 32) for p in precisions]
    runs += [("openvino", p, int(b)) for p in precisions for b in args.batch_sizes.split(",")]
    rows = []
    for backend, precision, batch in runs:
        out = subprocess.run([sys.executable, __file__, "--child", f"{backend}:{precision}:{batch}",
                              "--texts", str(args.texts)], capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(backend, precision, batch, rows[-1]["stages"]["encoded"], flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.with_suffix(".json").write_text(json.dumps(rows, indent=1))
    lines = [f"`python lab/experiments/openvino_memory.py --texts {args.texts} --batch-sizes {args.batch_sizes}`", "",
             "| backend | precision | batch | peak RSS MiB | after encode: anon MiB | file MiB | "
             "anon added by compile | anon added by encode | s (2 encodes) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        s = r["stages"]
        lines.append(f"| {r['backend']} | {'bf16' if r['bf16'] else 'fp32'} | {r['batch_size']} | "
                     f"{s['encoded']['VmHWM']} | {s['encoded']['RssAnon']} | {s['encoded']['RssFile']} | "
                     f"{s['compiled']['RssAnon'] - s['attached']['RssAnon']} | "
                     f"{s['encoded']['RssAnon'] - s['compiled']['RssAnon']} | {r['seconds']} |")
    OUT.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
