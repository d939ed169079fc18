"""Helpers shared by both benchmark workers (plain Python: no genembed, no llm2vec_gen).

Each worker runs in its own virtual environment, so this module imports nothing but the
standard library at import time; torch is imported inside the functions that need it.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from contextlib import contextmanager


# -- process memory (Linux /proc) -------------------------------------------------------
def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def rss_mib() -> float | None:
    kb = _status_kb("VmRSS")
    return None if kb is None else kb / 1024


def peak_rss_mib() -> float | None:
    """Peak resident set size since the process started or since the last reset_peak_rss()."""
    kb = _status_kb("VmHWM")
    if kb is None:  # not Linux: fall back to getrusage (never reset)
        import resource

        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux: write 5 to /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


# -- timing -----------------------------------------------------------------------------
def median(xs):
    return statistics.median(xs) if xs else None


@contextmanager
def timer(out: list):
    t0 = time.perf_counter()
    yield
    out.append(time.perf_counter() - t0)


# -- threads ----------------------------------------------------------------------------
def set_threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass


# -- FLOPs of a Llama-style decoder stack ------------------------------------------------
def llama_dims(config) -> dict:
    h = config.hidden_size
    heads = config.num_attention_heads
    kv = getattr(config, "num_key_value_heads", None) or heads
    hd = getattr(config, "head_dim", None) or h // heads
    return {"hidden": h, "heads": heads, "kv_heads": kv, "head_dim": hd,
            "intermediate": config.intermediate_size, "layers": config.num_hidden_layers}


def forward_flops(dims: dict, batch: int, length: int, past: int = 0) -> float:
    """Multiply-add FLOPs (2 per MAC) of one forward pass of the transformer stack (no LM head)
    over `length` new positions per row attending to `past + length` keys. Padding counts: it is
    computed. Attention counts the full score matrix (SDPA computes it, mask or not)."""
    h, hd, L = dims["hidden"], dims["head_dim"], dims["layers"]
    q, kv = dims["heads"] * hd, dims["kv_heads"] * hd
    linear = h * q + 2 * h * kv + q * h + 3 * h * dims["intermediate"]
    keys = past + length
    per_layer = 2 * linear * length + 2 * 2 * length * keys * q
    return float(batch) * L * per_layer


class ShapeRecorder:
    """Forward pre-hook on a transformer stack that records (batch, new positions, past) per call."""

    def __init__(self, module):
        self.calls: list[tuple[int, int, int]] = []
        self.handle = module.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs):
        x = kwargs.get("inputs_embeds")
        if x is None:
            x = kwargs.get("input_ids", args[0] if args else None)
        if x is None:
            return
        past = 0
        cache = kwargs.get("past_key_values", kwargs.get("cache"))
        if cache is not None and hasattr(cache, "get_seq_length"):
            try:
                past = int(cache.get_seq_length())
            except Exception:
                past = 0
        self.calls.append((int(x.shape[0]), int(x.shape[1]), past))

    def flops(self, dims: dict) -> float:
        return sum(forward_flops(dims, b, n, p) for b, n, p in self.calls)

    def tokens(self) -> int:
        return sum(b * n for b, n, _ in self.calls)

    def clear(self):
        self.calls.clear()

    def remove(self):
        self.handle.remove()


# -- I/O --------------------------------------------------------------------------------
def load_inputs(path: str) -> dict:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def worker_setup(parser: argparse.ArgumentParser | None = None) -> tuple[argparse.Namespace, dict]:
    """A worker's start: its arguments (--inputs, --phases, --out and any the parser adds), the
    inputs, the thread count, the seed."""
    ap = parser or argparse.ArgumentParser()
    ap.add_argument("--inputs", required=True)
    ap.add_argument("--phases", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    inp = load_inputs(args.inputs)
    set_threads(inp["config"]["threads"])
    import torch

    torch.manual_seed(inp["config"]["seed"])
    return args, inp


def run_phases(impl: str, specs: str, handlers: dict, result: dict, out_path: str) -> None:
    """Run comma-separated phase specs ("name:arg") with handlers[name](arg), timing each, into
    result["phases"]; then write the result. An unknown phase stops the worker with its name."""
    for spec in specs.split(","):
        name, _, arg = spec.partition(":")
        if name not in handlers:
            raise SystemExit(f"unknown phase {spec} (known: {', '.join(handlers)})")
        t0 = time.perf_counter()
        out = handlers[name](arg)
        out["phase_wall_s"] = time.perf_counter() - t0
        result["phases"][spec] = out
        print(f"[{impl}] {spec} done in {out['phase_wall_s']:.1f}s", file=sys.stderr, flush=True)
    write_result(out_path, result)


def write_result(path: str, result: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(result, fh, indent=1)
    os.replace(tmp, path)
    print(json.dumps(result))
    sys.stdout.flush()


def machine_info() -> dict:
    import platform

    model = None
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        load = open("/proc/loadavg").read().split()[:3]
    except OSError:
        load = None
    return {"cpu": model or platform.processor(), "cores": os.cpu_count(), "loadavg": load,
            "python": platform.python_version()}


def scale_phase(encode, inp: dict, n: int) -> dict:
    """Encode n texts (the input pool repeated) with encode(texts, instruction, batch_size, bf16)
    after a one-batch warm-up: wall time and peak memory over the resident size before the run.
    The dtype is the run's `scale_dtype` (fp32 where the inputs predate that setting)."""
    cfg = inp["config"]
    dtype = cfg.get("scale_dtype", "fp32")
    texts = [inp["texts"][i % len(inp["texts"])] for i in range(n)]
    bs = cfg["batch_size"]
    encode(texts[:bs], inp["instruction"], bs, dtype == "bf16")
    reset_peak_rss()
    rss0 = rss_mib()
    t0 = time.perf_counter()
    encode(texts, inp["instruction"], bs, dtype == "bf16")
    dt = time.perf_counter() - t0
    peak = peak_rss_mib()
    return {"texts": n, "dtype": dtype, "seconds": dt, "texts_per_s": n / dt, "rss_before_mib": rss0,
            "peak_rss_mib": peak, "peak_over_before_mib": peak - rss0}


# -- the equality check ----------------------------------------------------------------------
def equality_batch(inp: dict) -> tuple[list[str], str, int]:
    """(texts, instruction, batch size) of the equality check: the encode pass's first batch."""
    bs = inp["config"]["batch_size"]
    return inp["texts"][:bs], inp["instruction"], bs


def embeddings_path(out_path: str) -> str:
    """Where a worker writing its result to out_path puts its equality-check embeddings."""
    return out_path[:-len(".json")] + ".embeddings.npy" if out_path.endswith(".json") else out_path + ".embeddings.npy"


def save_embeddings(out_path: str, emb) -> dict:
    import numpy as np

    path = embeddings_path(out_path)
    np.save(path, np.asarray(emb, dtype=np.float32))
    return {"embeddings": os.path.basename(path), "shape": list(emb.shape), "dtype": "fp32"}
