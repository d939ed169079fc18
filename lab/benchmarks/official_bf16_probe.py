"""Which precision is the official code's faster one on this CPU? A small probe beside backends.py.

    .venv/bin/python lab/benchmarks/official_bf16_probe.py --out lab/benchmarks/results-backends   # after backends.py

On a CPU without bf16 instructions torch emulates bf16, and the official code's bf16 encode of
backends.py's 256 questions would take most of an hour. This encodes the first --texts of that run's
FAQ-length questions once (batch = --texts, no warm-up) through the official code in float32 and in
bf16 autocast, each in its own process, on the run's checkpoint, and writes OUT/official-bf16-probe.json.
backends.py then compares genembed with the faster of the official rows it measured itself.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run as bench  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(HERE / "results-backends"), help="a backends.py run's folder")
    ap.add_argument("--texts", type=int, default=8)
    args = ap.parse_args(argv)
    out = Path(args.out).resolve()
    source = out / "backends-inputs" / "questions.json"
    if not source.exists():
        raise SystemExit(f"{source} is missing: run lab/benchmarks/backends.py --out {out} first")
    inp = json.loads(source.read_text())
    inp["texts"] = inp["texts"][: args.texts]
    inp["config"].update(texts=args.texts, batch_size=args.texts, warmup=0, repeats=1)
    probe = out / "backends-inputs" / f"questions{args.texts}.json"
    probe.write_text(json.dumps(inp))
    worker_args = argparse.Namespace(resume=False, peer_no_grad_ckpt=False, threads=os.cpu_count())
    result = {}
    for dtype in ("fp32", "bf16"):
        r = bench.run_worker("official", [f"encode:{dtype}"], probe, out, worker_args,
                             name=f"probe-official-encode-{dtype}-{probe.stem}")
        if "error" in r:
            raise SystemExit(f"official encode:{dtype} failed: see {r['log']}")
        result[dtype] = r["phases"][f"encode:{dtype}"]["texts_per_s"]
    from genembed.backbone import bf16_is_native

    summary = {"texts": args.texts, "bf16_is_native": bf16_is_native(), "texts_per_s": result,
               "bf16_over_fp32": result["bf16"] / result["fp32"]}
    (out / "official-bf16-probe.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
