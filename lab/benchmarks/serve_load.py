"""Load test of `genembed serve` on loopback: N requests of one short text at concurrency C.

    .venv/bin/python lab/benchmarks/serve_load.py                         # bundled model, 1,000 requests, 16 clients
    .venv/bin/python lab/benchmarks/serve_load.py --model tiny --requests 50        # smoke (a tiny random model)
    .venv/bin/python lab/benchmarks/serve_load.py --compare               # 1 vs 16 clients x batching on / off,
                                                                      # table → lab/reports/serve-load.md and .json

The server runs in its own process (`genembed serve`, as users start it), so the client's Python
does not compete with it for the GIL; the client is one asyncio loop with C connections. Each
request embeds one text; the report gives errors, p50 / p99 latency, requests/s and how many
forward batches the server ran (from its /metrics), i.e. how well requests were batched.
Bounded: --max-seconds stops issuing requests, --timeout bounds each one.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEXTS = ["how do I boil an egg", "what is the capital of france", "write a poem about the sea",
         "explain how a neural network learns"]


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="checkpoint folder; 'tiny' builds a tiny random model "
                                                  "(default: the bundled one)")
    ap.add_argument("--requests", type=int, default=1000, help="requests per run")
    ap.add_argument("--concurrency", type=int, default=16, help="clients sending at once (single run)")
    ap.add_argument("--max-batch", type=int, default=32)
    ap.add_argument("--backend", default="torch", help="the server's --backend (torch, onnx or openvino)")
    ap.add_argument("--bf16", action="store_true", help="the server's --bf16 (embed under bf16 autocast)")
    ap.add_argument("--max-wait-ms", type=float, default=5.0, help="the server's batching wait (single run; 0: off)")
    ap.add_argument("--compare", action="store_true",
                    help="run 1 and 16 clients with batching on (--max-wait-ms) and off, and write the table")
    ap.add_argument("--out", type=Path, default=ROOT / "lab" / "reports" / "serve-load",
                    help="--compare writes OUT.md and OUT.json")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    ap.add_argument("--max-seconds", type=float, default=600.0, help="stop issuing requests of a run after this")
    ap.add_argument("--startup-timeout", type=float, default=300.0, help="seconds the server may take to load")
    args = ap.parse_args(argv)
    if args.requests < 1 or args.concurrency < 1:
        ap.error("--requests and --concurrency must be >= 1")
    return args


def tiny_checkpoint(folder: Path) -> str:
    from genembed.backbone import load_backbone
    from genembed.checkpoint import save_checkpoint
    from genembed.model import GenEmbed
    from genembed.testing import build_tiny_backbone

    path = build_tiny_backbone(folder / "backbone")
    model = GenEmbed.create(load_backbone(path), embedding_dim=384, teacher="self")
    return str(save_checkpoint(model, folder / "ckpt"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`genembed serve` in a subprocess on a free loopback port."""

    def __init__(self, model, max_batch, max_wait_ms, startup_timeout, backend: str = "torch", bf16: bool = False):
        import httpx

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-c", "from genembed.cli import main; main()", "serve", "--port", str(self.port),
               "--max-batch", str(max_batch), "--max-wait-ms", str(max_wait_ms), "--backend", backend] + (["--bf16"] if bf16 else [])
        if model:
            cmd += ["--model", model]
        env = {k: v for k, v in os.environ.items() if k != "GENEMBED_API_KEY"}  # no key on loopback
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + startup_timeout
        while True:
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                self.log.seek(0)
                raise SystemExit(f"server did not start:\n{self.log.read().decode(errors='replace')[-3000:]}")
            time.sleep(0.5)

    def forward_batches(self) -> float:
        import httpx
        from prometheus_client.parser import text_string_to_metric_families

        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
                   if s.name == "genembed_forward_batches_total" and s.labels.get("kind") == "encode")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()  # uvicorn shuts down gracefully on SIGTERM
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def load(url: str, requests: int, concurrency: int, timeout: float, max_seconds: float) -> dict:
    import httpx

    latencies, errors, next_i = [], [], 0
    stop_at = time.monotonic() + max_seconds

    async def client(http):
        nonlocal next_i
        while next_i < requests and time.monotonic() < stop_at:
            i, next_i = next_i, next_i + 1
            t0 = time.perf_counter()
            try:
                r = await http.post("/v1/embeddings", json={"input": TEXTS[i % len(TEXTS)]})
                ok = r.status_code == 200 and len(r.json()["data"]) == 1
                if not ok:
                    errors.append(f"HTTP {r.status_code}: {r.text[:200]}")
            except (httpx.HTTPError, ValueError, KeyError) as e:
                ok = False
                errors.append(f"{type(e).__name__}: {e}")
            if ok:
                latencies.append(time.perf_counter() - t0)

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits) as http:
        start = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return {"sent": next_i, "ok": len(latencies), "errors": len(errors), "error_samples": errors[:5],
            "seconds": elapsed, "latencies": latencies}


def percentile(values, q):
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * len(s) + 0.5) - 1))]  # nearest rank


def run_one(model, args, concurrency, max_wait_ms, server=None) -> dict:
    own = server is None
    server = server or Server(model, args.max_batch, max_wait_ms, args.startup_timeout, args.backend, args.bf16)
    try:
        # warm-up (connections, first passes), left out of the figures and of the batch count
        asyncio.run(load(server.url, 2 * concurrency, concurrency, args.timeout, args.max_seconds))
        before = server.forward_batches()
        res = asyncio.run(load(server.url, args.requests, concurrency, args.timeout, args.max_seconds))
        forward = server.forward_batches() - before
    finally:
        if own:
            server.stop()
    lat = res.pop("latencies")
    return {"backend": args.backend + (" bf16" if args.bf16 else ""), "batching": "on" if max_wait_ms > 0 else "off", "max_wait_ms": max_wait_ms,
            "clients": concurrency,
            **res, "p50_ms": percentile(lat, 50) * 1000, "p99_ms": percentile(lat, 99) * 1000,
            "requests_per_s": res["ok"] / res["seconds"] if res["seconds"] else float("nan"),
            "forward_batches": forward, "requests_per_forward_batch": res["sent"] / forward if forward else float("nan")}


def table(rows) -> str:
    lines = ["| backend | batching | clients | requests | errors | p50 ms | p99 ms | requests/s | forward batches | requests / batch |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r.get('backend', 'torch')} | {r['batching']} ({r['max_wait_ms']:g} ms) | {r['clients']} | {r['sent']} | {r['errors']} | "
                     f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['requests_per_s']:.1f} | {r['forward_batches']:.0f} | "
                     f"{r['requests_per_forward_batch']:.2f} |")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    command = " ".join(shlex.quote(a) for a in [".venv/bin/python", "lab/benchmarks/serve_load.py",
                                                *(sys.argv[1:] if argv is None else argv)])
    with tempfile.TemporaryDirectory() as tmp:
        model = tiny_checkpoint(Path(tmp)) if args.model == "tiny" else args.model
        if not args.compare:
            row = run_one(model, args, args.concurrency, args.max_wait_ms)
            print(table([row]))
            for e in row["error_samples"]:
                print("error:", e)
            return row
        rows = []
        for wait in (args.max_wait_ms or 5.0, 0.0):
            server = Server(model, args.max_batch, wait, args.startup_timeout, args.backend, args.bf16)
            try:
                for clients in (1, 16):
                    rows.append(run_one(model, args, clients, wait, server=server))
                    print(table(rows[-1:]).splitlines()[-1], flush=True)
            finally:
                server.stop()
    md = table(rows)
    meta = {"command": command, "model": args.model or "bundled default", "requests_per_run": args.requests,
            "max_batch": args.max_batch, "cpu_count": os.cpu_count(), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
            "platform": platform.platform(), "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %z")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({**meta, "rows": rows}, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(
        f"# `genembed serve` under load (loopback)\n\nCommand: `{command}`\n\n"
        f"Model: {meta['model']}; {args.requests} requests per row, one short text each; server `--max-batch "
        f"{args.max_batch}`; {meta['cpu_count']} CPUs, OMP_NUM_THREADS={meta['OMP_NUM_THREADS']}; {meta['date']}.\n"
        f"\"forward batches\" are the server's (from /metrics): requests / batch > 1 means requests shared passes.\n\n"
        f"{md}\n")
    print(f"\n{md}\n\nwritten: {args.out.with_suffix('.md')} and .json")
    return rows


if __name__ == "__main__":
    main()
