"""genembed vs the official LLM2Vec-Gen (llm2vec-gen 0.1.3), in one run, on one backbone.

    .venv/bin/python lab/benchmarks/run.py                      # small defaults (minutes)
    .venv/bin/python lab/benchmarks/run.py --texts 4 --batch-size 2 --steps 1 --decode-tokens 4 --scale 8,16   # smoke

The driver (this file, genembed's venv) builds one input file — ShareGPT queries and answers, cut
to the same token budgets, MiniLM targets for the training batch — and one model: an official-layout
checkpoint (--out/checkpoint) that the official code builds and saves (peer_worker.py, phase build)
around the de-quantised backbone (--out/backbone). Then it runs each implementation in its own
virtual environment and process (lab/benchmarks/genembed_worker.py, lab/benchmarks/peer_worker.py) on that
same file and that same checkpoint (same weights, same input layout), with the same thread count,
batch sizes and dtypes; checks that both give the same embeddings for the first batch; and
compiles the table: ratios genembed / official plus the absolute numbers, as text on stdout and as
results.md and results.json in --out. See lab/benchmarks/README.md for what each figure means.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(ROOT))

import bench_common as bc  # noqa: E402

MAIN_PY = ROOT / ".venv" / "bin" / "python"
PEER_PY = HERE / ".venv-peer" / "bin" / "python"
IMPLS = ("genembed", "official")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--texts", type=int, default=256, help="texts in the encode-throughput pass (mixed lengths)")
    ap.add_argument("--batch-size", type=int, default=32, help="batch size of every phase (both implementations)")
    ap.add_argument("--steps", type=int, default=5, help="timed training steps (after --warmup)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed warm-up passes / steps before each measurement")
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats of encode and decode (median reported)")
    ap.add_argument("--decode-tokens", type=int, default=64, help="max new tokens per decode")
    ap.add_argument("--hyde-tokens", type=int, default=64, help="tokens of the HyDE answer (genembed only)")
    ap.add_argument("--hyde-texts", type=int, default=None, help="texts for the HyDE comparison (default: one batch)")
    ap.add_argument("--scale", default="64,256", help="comma-separated text counts for the scaling runs ('' to skip); "
                                                      "the full run uses 1000,10000")
    ap.add_argument("--scale-impls", default=",".join(IMPLS),
                    help="implementations that run the scaling phase (e.g. 'genembed': 10k texts through the "
                         "official code costs as much again and scaling is a property of each code on its own)")
    ap.add_argument("--scale-dtype", choices=("fp32", "bf16"), default="bf16",
                    help="dtype of the scaling runs (bf16: the faster CPU path, half the time at 10k texts)")
    ap.add_argument("--dtypes", default="fp32,bf16", help="fp32 and/or bf16 (autocast), comma-separated")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads in every worker")
    ap.add_argument("--max-text-tokens", type=int, default=256, help="encode texts are cut to this many tokens")
    ap.add_argument("--max-query-tokens", type=int, default=128, help="training queries are cut to this many tokens")
    ap.add_argument("--max-response-tokens", type=int, default=64, help="training responses are cut to this many tokens")
    ap.add_argument("--thought-tokens", type=int, default=0, help="T (thought tokens), both implementations")
    ap.add_argument("--compression-tokens", type=int, default=10, help="C (compression tokens), both implementations")
    ap.add_argument("--peer-no-grad-ckpt", action="store_true",
                    help="train the official model without gradient checkpointing (its default config has it on)")
    ap.add_argument("--skip", default="", help="phases to skip, comma-separated: "
                                               "equality,encode,train,decode,hyde,scale")
    ap.add_argument("--only", choices=IMPLS, default=None, help="run one implementation only")
    ap.add_argument("--no-setup", action="store_true", help="do not run setup_peer.sh first")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resume", action="store_true",
                    help="reuse what an earlier run in --out already measured (its inputs, matmul peak and every "
                         "worker result in raw/) and run only the rest")
    ap.add_argument("--rerender", action="store_true", help="only rebuild the table from --out/results.json")
    ap.add_argument("--out", default=str(HERE / "results"), help="folder for inputs.json, logs, results.md/json")
    return ap.parse_args(argv)


# -- inputs ---------------------------------------------------------------------------------
def truncate(tok, texts: list[str], max_tokens: int) -> list[str]:
    ids = tok(texts, add_special_tokens=False, truncation=True, max_length=max_tokens)["input_ids"]
    full = tok(texts, add_special_tokens=False)["input_ids"]
    return [t if len(f) <= max_tokens else tok.decode(i) for t, i, f in zip(texts, ids, full)]


def strip(texts: list[str]) -> list[str]:
    return [t.strip() or "." for t in texts]  # (an all-blank text would become empty)


def build_inputs(args, scale: list[int]) -> dict:
    from transformers import AutoTokenizer

    from genembed.backbone import ALIASES
    from genembed.data import load_sharegpt, package_file
    from genembed.model import DEFAULT_INSTRUCTIONS
    from genembed.teachers import SentenceTransformerTeacher

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    t0 = time.perf_counter()
    convs = load_sharegpt("train")
    random.Random(args.seed).shuffle(convs)
    n_pool = max([args.texts, args.batch_size, args.hyde_texts or 0, *scale])
    pool = [c.query for c in convs[:n_pool]]  # fewer than n_pool: the scaling runs cycle through them
    train = [c for c in convs if c.answer.strip()][: args.batch_size]
    del convs
    gguf = package_file(*ALIASES["smollm2-135m-instruct"])  # the backbone both workers load
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # stripped: the official MTEB wrapper and collator strip every text, genembed takes it as given
    texts = strip(truncate(tok, pool, args.max_text_tokens))
    queries = strip(truncate(tok, [c.query for c in train], args.max_query_tokens))
    responses = strip(truncate(tok, [c.answer for c in train], args.max_response_tokens))
    teacher = SentenceTransformerTeacher("all-minilm-l6-v2")
    targets = teacher.embed(responses, batch_size=args.batch_size)
    print(f"inputs: {len(texts)} texts, a training batch of {len(queries)} "
          f"({time.perf_counter() - t0:.0f}s)", flush=True)
    return {
        "instruction": DEFAULT_INSTRUCTIONS["query"],
        "texts": texts,
        "train": {"queries": queries, "responses": responses, "targets": targets.tolist()},
        "config": {
            "threads": args.threads, "seed": args.seed, "embedding_dim": int(targets.shape[1]),
            "num_thought_tokens": args.thought_tokens, "num_compression_tokens": args.compression_tokens,
            "max_text_tokens": args.max_text_tokens, "max_query_tokens": args.max_query_tokens,
            "max_response_tokens": args.max_response_tokens, "peer_max_input_length": 512,
            "texts": args.texts, "batch_size": args.batch_size, "warmup": args.warmup, "repeats": args.repeats,
            "steps": args.steps, "decode_tokens": args.decode_tokens, "hyde_tokens": args.hyde_tokens,
            "hyde_texts": args.hyde_texts or args.batch_size, "scale_dtype": args.scale_dtype,
        },
    }


# -- peak matmul ----------------------------------------------------------------------------
def matmul_peak(threads: int) -> dict:
    """Best FLOP/s of square matmuls (fp32 and bf16) on this machine with `threads` threads."""
    import torch

    from genembed.backbone import bf16_is_native

    torch.set_num_threads(threads)
    out = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        # emulated bf16 (a CPU without bf16 instructions) runs at ~1 GFLOP/s: one small size, as many
        # calls as it takes a second or two, not the eight minutes the full set costs there
        fast = dtype == torch.float32 or bf16_is_native()
        best = 0.0
        for n in (1024, 2048) if fast else (1024,):
            a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
            torch.matmul(a, b)
            times = []
            for _ in range(5 if fast else 2):
                t0 = time.perf_counter()
                torch.matmul(a, b)
                times.append(time.perf_counter() - t0)
            best = max(best, 2.0 * n ** 3 / min(times))
        out[name] = best
    return out


# -- the one checkpoint both implementations load ---------------------------------------------------
def checkpoint_dir(out_dir: Path) -> Path:
    return out_dir / "checkpoint"


def ensure_checkpoint(inputs: dict, inputs_path: Path, out_dir: Path, args) -> dict:
    """The run's official-layout checkpoint, built once by the official code (peer_worker.py, phase
    build) and kept: a folder that is already there (with its build record) is reused, if it has
    this run's T, C and embedding width."""
    folder, record = checkpoint_dir(out_dir), out_dir / "raw" / "official__build.json"
    cfg = inputs["config"]
    want = {"special_tokens": cfg["num_thought_tokens"] + cfg["num_compression_tokens"],
            "encoding_mode": f"last_{cfg['num_compression_tokens']}_tokens", "embedding_dim": cfg["embedding_dim"]}
    if (folder / "run_config.yml").is_file() and record.is_file():
        built = json.loads(record.read_text())
        got = built["phases"]["build"]
        have = {"special_tokens": len(got["special_tokens"]), "encoding_mode": got["encoding_mode"],
                "embedding_dim": got["embedding_dim"]}
        if have != want:
            raise SystemExit(f"{folder} was built with {have}, this run needs {want}: use a fresh --out "
                             f"(or remove {folder} and {record})")
        print(f"checkpoint kept: {folder}", flush=True)
        return built
    if not PEER_PY.exists():
        raise SystemExit(f"{PEER_PY} is missing: the checkpoint is built by the official code in that venv "
                         f"(lab/benchmarks/setup_peer.sh; run.py calls it unless --no-setup)")
    print("building the official-layout checkpoint (official code, peer venv) ...", end="", flush=True)
    t0 = time.perf_counter()
    cmd = [str(PEER_PY), str(HERE / "peer_worker.py"), "--inputs", str(inputs_path), "--phases", "build",
           "--checkpoint", str(folder), "--backbone-dir", str(out_dir / "backbone"), "--out", str(record)]
    log = out_dir / "logs" / "official__build.log"
    record.parent.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as fh:
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=str(ROOT), env=worker_env(args),
                              check=False)
    if proc.returncode != 0 or not record.exists():
        tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-3:])
        raise SystemExit(f" FAILED (see {log}): {tail}")
    print(f" {time.perf_counter() - t0:.0f}s: {folder}", flush=True)
    return json.loads(record.read_text())


def worker_env(args) -> dict:
    env = dict(os.environ)
    n = str(args.threads)
    env.update(OMP_NUM_THREADS=n, MKL_NUM_THREADS=n, TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", TRANSFORMERS_VERBOSITY="error", TQDM_DISABLE="1")
    env.pop("PYTHONPATH", None)
    return env


# -- workers --------------------------------------------------------------------------------
def run_worker(impl: str, phases: list[str], inputs: Path, out_dir: Path, args, name: str | None = None,
               extra: tuple[str, ...] = ()) -> dict:
    """One worker process on `inputs` → its JSON (OUT/raw/NAME.json, log in OUT/logs; NAME defaults to
    impl__phases). extra: more worker arguments (lab/benchmarks/backends.py: --backend)."""
    name = name or f"{impl}__" + "_".join(p.replace(":", "-") for p in phases)
    out = out_dir / "raw" / f"{name}.json"
    log = out_dir / "logs" / f"{name}.log"
    out.parent.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    py, script = (MAIN_PY, HERE / "genembed_worker.py") if impl == "genembed" else (PEER_PY, HERE / "peer_worker.py")
    if args.resume and out.exists():
        print(f"  {impl:9s} {','.join(phases)} ... kept from {out.name}", flush=True)
        return json.loads(out.read_text())
    cmd = [str(py), str(script), "--inputs", str(inputs), "--phases", ",".join(phases), "--out", str(out),
           "--checkpoint", str(checkpoint_dir(out_dir)), *extra]
    if impl == "official" and args.peer_no_grad_ckpt:
        cmd.append("--no-grad-ckpt")
    env = worker_env(args)
    print(f"  {impl:9s} {','.join(phases)} ...", end="", flush=True)
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=str(ROOT), env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0 or not out.exists():
        tail = log.read_text(errors="replace").strip().splitlines()[-3:]
        print(f" FAILED ({wall:.0f}s, see {log})", flush=True)
        return {"impl": impl, "error": " | ".join(tail), "log": str(log), "phases": {}}
    print(f" {wall:.0f}s", flush=True)
    result = json.loads(out.read_text())
    result["wall_s"] = wall
    return result


def plan(args, scale: list[int]) -> list[tuple[str, list[str]]]:
    """Groups of phases, each run in a fresh process per implementation. Training and scaling get a
    process of their own, so that their peak RSS is not inflated by what an earlier phase left."""
    skip = set(filter(None, args.skip.split(",")))
    dtypes = [d for d in args.dtypes.split(",") if d]
    groups = []
    speed = [f"{p}:{d}" for d in dtypes for p in ("encode", "decode", "hyde") if p not in skip]
    if speed:
        groups.append(("speed", speed))
    if "train" not in skip:
        groups += [("train", [f"train:{d}"]) for d in dtypes]
        groups += [("train", [f"train-ckpt:{d}"]) for d in dtypes]
    if "scale" not in skip:
        groups += [("scale", [f"scale:{n}"]) for n in scale]
    return groups


def with_equality(groups: list[tuple[str, list[str]]], args) -> list[tuple[str, list[str]]]:
    """The plan with phase equality (the same model check: both encode the first batch in fp32) first in
    the speed process, or in a process of its own when there is none; unless --skip equality."""
    if "equality" in set(filter(None, args.skip.split(","))):
        return groups
    if groups and groups[0][0] == "speed":
        return [("speed", ["equality", *groups[0][1]]), *groups[1:]]
    return [("speed", ["equality"]), *groups]


def phases_for(impl: str, phases: list[str], scale_impls: set[str]) -> list[str]:
    """The phases of a group that `impl` runs: HyDE is genembed's alone (it needs the answering
    and the teacher), and so is train-ckpt (genembed with --gradient-checkpointing; the official
    trainer checkpoints by default); scaling runs only for the implementations in --scale-impls."""
    return [p for p in phases if not (impl == "official" and p.startswith(("hyde", "train-ckpt")))
            and not (p.startswith("scale") and impl not in scale_impls)]


# -- the table ------------------------------------------------------------------------------
def fmt(x, digits=3):
    if x is None:
        return "—"
    if isinstance(x, str):
        return x
    if abs(x) >= 1e4 or (abs(x) < 1e-2 and x != 0):
        return f"{x:.3g}"
    return f"{x:.{digits}g}" if abs(x) < 100 else f"{x:.0f}"


def get(results: dict, impl: str, phase: str, key: str):
    ph = results.get(impl, {}).get(phase)
    return None if ph is None else ph.get(key)


def equality(raw: list[dict], out_dir: Path) -> dict | None:
    """Both implementations' fp32 embeddings of the first batch (phase equality), compared: the
    benchmark's own check that it measures the same model on the same inputs."""
    import numpy as np

    files = {res["impl"]: out_dir / "raw" / res["phases"]["equality"]["embeddings"]
             for res in raw if "equality" in res.get("phases", {})}
    if set(files) != set(IMPLS) or not all(f.exists() for f in files.values()):
        return None
    g, o = (np.load(files[impl]).astype(np.float64) for impl in IMPLS)
    if g.shape != o.shape:
        return {"error": f"shapes differ: genembed {list(g.shape)}, official {list(o.shape)}"}
    cos = (g * o).sum(1) / np.maximum(np.linalg.norm(g, axis=1) * np.linalg.norm(o, axis=1), 1e-300)
    return {"texts": int(g.shape[0]), "dim": int(g.shape[1]), "dtype": "fp32",
            "max_abs_diff": float(np.abs(g - o).max()), "max_abs_value": float(np.abs(o).max()),
            "min_cosine": float(cos.min()), "mean_cosine": float(cos.mean()),
            "files": {impl: str(f.relative_to(out_dir)) for impl, f in files.items()}}


def compile_rows(results: dict, peaks: dict, dtypes: list[str], scale: list[int], loads: dict,
                 eq: dict | None = None) -> list[dict]:
    rows = []

    def add(figure, unit, better, g, o, note=""):
        ratio = g / o if (g is not None and o not in (None, 0)) else None
        rows.append({"figure": figure, "unit": unit, "better": better, "genembed": g, "official": o,
                     "ratio": ratio, "note": note})

    if eq and "error" not in eq:  # a comparison of the two, not a figure of each: the genembed column holds it
        add("same model check: first-batch embeddings, max abs(genembed − official) [fp32]", "abs", "≈ 0",
            eq["max_abs_diff"], None, f"{eq['texts']} texts × {eq['dim']}; largest |value| {fmt(eq['max_abs_value'])}")
        add("same model check: first-batch embeddings, min cosine(genembed, official) [fp32]", "cos", "≈ 1",
            f"{eq['min_cosine']:.9f}", None, f"mean {eq['mean_cosine']:.9f}")
    for i, part in enumerate(("reconstruction", "alignment")):
        d = dtypes[0] if dtypes else "fp32"
        g = get(results, "genembed", f"train:{d}", "losses_rec_align")
        o = get(results, "official", f"train:{d}", "losses_rec_align")
        if g or o:
            add(f"same model check: {part} loss before the first update [{d}]", "loss", "ratio ≈ 1",
                g[0][i] if g else None, o[0][i] if o else None,
                "the same batch, the same weights" + ("; the official collator also masks every target equal to "
                                                      "its pad id (here BOS = pad = <|im_start|>), see README"
                                                      if part == "reconstruction" else ""))

    for d in dtypes:
        e = f"encode:{d}"
        add(f"encode throughput [{d}]", "texts/s", "higher", get(results, "genembed", e, "texts_per_s"),
            get(results, "official", e, "texts_per_s"))
        add(f"encode throughput, genembed's shared-head cache off [{d}]", "texts/s", "higher",
            get(results, "genembed", e, "texts_per_s_head_cache_off"), get(results, "official", e, "texts_per_s"),
            "the lever alone: template + instruction run for every text (one timed pass)")
        if d == dtypes[0]:
            add("encode input tokens per text", "tokens", "info",
                get(results, "genembed", e, "mean_tokens_per_text"), get(results, "official", e, "mean_tokens_per_text"),
                "the same official input layout: equal")
        g_tok = _div(get(results, "genembed", e, "real_tokens"), get(results, "genembed", e, "median_s"))
        o_tok = _div(get(results, "official", e, "real_tokens"), get(results, "official", e, "median_s"))
        add(f"encode token throughput [{d}]", "tokens/s", "higher", g_tok, o_tok,
            "real (unpadded) input tokens per second, cached head included")
        gf, of = get(results, "genembed", e, "flop_per_s"), get(results, "official", e, "flop_per_s")
        add(f"encode achieved FLOP/s [{d}]", "GFLOP/s", "higher", _scale(gf, 1e-9), _scale(of, 1e-9),
            "counted on padded shapes")
        add(f"encode FLOP/s / bf16 matmul peak [{d}]", "%", "higher", _pct(gf, peaks.get("bf16")),
            _pct(of, peaks.get("bf16")), f"peak {fmt(_scale(peaks.get('bf16'), 1e-9))} GFLOP/s bf16, "
                                        f"{fmt(_scale(peaks.get('fp32'), 1e-9))} fp32")
    for d in dtypes:
        t = f"train:{d}"
        if d == dtypes[0]:
            add("training tokens per batch (queries + responses)", "tokens", "info",
                _sum(get(results, "genembed", t, "query_tokens"), get(results, "genembed", t, "response_tokens")),
                _sum(get(results, "official", t, "query_tokens"), get(results, "official", t, "response_tokens")),
                "unpadded")
        add(f"training step, both losses [{d}]", "s", "lower", get(results, "genembed", t, "median_s"),
            get(results, "official", t, "median_s"))
        add(f"training peak RSS [{d}]", "MiB", "lower", get(results, "genembed", t, "peak_rss_mib"),
            get(results, "official", t, "peak_rss_mib"), "whole process, models included")
        c = f"train-ckpt:{d}"
        add(f"training step, genembed --gradient-checkpointing [{d}]", "s", "lower",
            get(results, "genembed", c, "median_s"), get(results, "official", t, "median_s"),
            "genembed's low-memory mode against the official default (which checkpoints too)")
        add(f"training peak RSS, genembed --gradient-checkpointing [{d}]", "MiB", "lower",
            get(results, "genembed", c, "peak_rss_mib"), get(results, "official", t, "peak_rss_mib"))
    for d in dtypes:
        k = f"decode:{d}"
        add(f"decode embedding → text [{d}]", "tokens/s", "higher", get(results, "genembed", k, "tokens_per_s"),
            get(results, "official", k, "tokens_per_s"), "batch × decode steps run / time")
        add(f"decode steps run [{d}]", "steps", "info", _med(get(results, "genembed", k, "steps")),
            _med(get(results, "official", k, "steps")), "genembed stops when every row has ended")
    add("model load", "s", "lower", loads.get("genembed", {}).get("load_s"), loads.get("official", {}).get("load_s"))
    add("RSS after load", "MiB", "lower", loads.get("genembed", {}).get("rss_after_load_mib"),
        loads.get("official", {}).get("rss_after_load_mib"), "official holds an encoder and a decoder copy")
    for n in scale:
        s = f"scale:{n}"
        dtype = get(results, "genembed", s, "dtype") or get(results, "official", s, "dtype") or "fp32"
        add(f"encode {n} texts [{dtype}]", "s", "lower", get(results, "genembed", s, "seconds"),
            get(results, "official", s, "seconds"))
        add(f"encode {n} texts: peak RSS over baseline", "MiB", "lower",
            get(results, "genembed", s, "peak_over_before_mib"), get(results, "official", s, "peak_over_before_mib"))
    return rows


def _sum(a, b):
    return None if a is None or b is None else a + b


def _med(xs):
    return None if not xs else bc.median(xs)


def _div(a, b):
    return None if a is None or not b else a / b


def _scale(x, f):
    return None if x is None else x * f


def _pct(x, peak):
    return None if x is None or not peak else 100.0 * x / peak


def scaling_summary(results: dict, scale: list[int]) -> list[dict]:
    out = []
    if len(scale) < 2:
        return out
    a, b = scale[0], scale[-1]
    for impl in IMPLS:
        ta, tb = get(results, impl, f"scale:{a}", "seconds"), get(results, impl, f"scale:{b}", "seconds")
        ma = get(results, impl, f"scale:{a}", "peak_over_before_mib")
        mb = get(results, impl, f"scale:{b}", "peak_over_before_mib")
        if ta and tb:
            out.append({"impl": impl, "from": a, "to": b, "size_ratio": b / a, "time_ratio": tb / ta,
                        "linearity": (tb / ta) / (b / a), "peak_over_baseline_mib": [ma, mb]})
    return out


def render(rows, scaling, hyde, meta) -> str:
    m, ck, eq = meta["machine"], meta.get("checkpoint") or {}, meta.get("equality")
    lines = [f"# genembed vs official LLM2Vec-Gen ({meta['backbone']})", "",
             f"Machine: {m['cpu']}, {m['cores']} cores; {meta['threads']} torch threads per worker; "
             f"load average before {' '.join(m['loadavg'] or [])} / after {' '.join(meta['loadavg_after'] or [])}.",
             f"genembed: torch {meta['versions'].get('genembed', {}).get('torch')}, transformers "
             f"{meta['versions'].get('genembed', {}).get('transformers')}; official llm2vec-gen 0.1.3: torch "
             f"{meta['versions'].get('official', {}).get('torch')}, transformers "
             f"{meta['versions'].get('official', {}).get('transformers')}.",
             f"Same inputs for both: {meta['config']['texts']} ShareGPT queries (≤ {meta['config']['max_text_tokens']} "
             f"tokens) for encode; batch {meta['config']['batch_size']}; training batch of {meta['config']['batch_size']} "
             f"(queries ≤ {meta['config']['max_query_tokens']}, responses ≤ {meta['config']['max_response_tokens']} "
             f"tokens, MiniLM targets); T={meta['config']['num_thought_tokens']} thought + "
             f"C={meta['config']['num_compression_tokens']} compression tokens; decode {meta['config']['decode_tokens']} "
             f"tokens; medians of {meta['config']['repeats']} repeats / {meta['config']['steps']} steps after "
             f"{meta['config']['warmup']} warm-up.",
             (f"One model for both: the official-layout checkpoint `{ck.get('path', '?')}` built and saved by the "
              f"official code (seed {ck.get('seed', '?')}, {ck.get('trainable_params', '?')} trainable parameters, "
              f"backbone `{ck.get('backbone_dir', '?')}`); the official code loads it with "
              f"`LLM2VecGenModel.from_pretrained`, genembed with `genembed.load` (its official input layout)."),
             ("Same model check: " + (eq["error"] if "error" in eq else
              f"the first batch's fp32 embeddings ({eq['texts']} texts × {eq['dim']}) differ by at most "
              f"{eq['max_abs_diff']:.3g} (largest |value| {eq['max_abs_value']:.3g}), min cosine "
              f"{eq['min_cosine']:.9f}.")) if eq else "Same model check: not run (needs phase equality from both).",
             "",
             "| figure | unit | genembed | official | genembed / official | better |",
             "|---|---|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['figure']} | {r['unit']} | {fmt(r['genembed'])} | {fmt(r['official'])} | "
                     f"{fmt(r['ratio'])}{'×' if r['ratio'] is not None else ''} | {r['better']} |")
    if scaling:
        lines += ["", "Scaling (time should grow with the number of texts, memory should not):", "",
                  "| impl | texts | time ratio (size ratio) | time / linear | peak RSS over baseline, MiB |",
                  "|---|---|---:|---:|---|"]
        for s in scaling:
            lines.append(f"| {s['impl']} | {s['from']} → {s['to']} | {fmt(s['time_ratio'])} ({fmt(s['size_ratio'])}) | "
                         f"{fmt(s['linearity'])} | {fmt(s['peak_over_baseline_mib'][0])} → "
                         f"{fmt(s['peak_over_baseline_mib'][1])} |")
    if hyde:
        lines += ["", "Encode vs HyDE (genembed only: the backbone writes an answer, MiniLM embeds it):", "",
                  "| dtype | texts | HyDE s/text | encode s/text | HyDE / encode |", "|---|---:|---:|---:|---:|"]
        for d, h in hyde.items():
            lines.append(f"| {d} | {h['texts']} | {fmt(h['hyde_s_per_text'])} | {fmt(h['encode_s_per_text'])} | "
                         f"{fmt(h['hyde_over_encode'])}× |")
    if meta.get("errors"):
        lines += ["", "Errors:"] + [f"- {e}" for e in meta["errors"]]
    lines += ["", "Notes: " + " ".join(meta["notes"])]
    return "\n".join(lines) + "\n"


NOTES = [
    "Both load the same official-layout checkpoint and so use the same input layout: BOS + '<instruction> <text>'",
    "as one string + the special tokens, no chat template (see 'input tokens per text'). genembed runs the head",
    "every input shares (BOS + instruction) once and reuses its keys/values (genembed/prefix_cache.py).",
    "The official collator appends the Llama string '<|end_of_text|>' (plain text for SmolLM2) to every response;",
    "genembed builds the same targets for an official-layout model (inputs.official_response_ids).",
    "Training targets are precomputed MiniLM embeddings for both; the official trainer would also run its teacher",
    "every step, which is not timed here.",
    "The official decoder has no KV cache (the whole sequence is recomputed per token); genembed's has one.",
    "The official model trains with gradient checkpointing (its default config) unless --peer-no-grad-ckpt.",
]


def collect(raw: list[dict]) -> tuple[dict, dict, dict, list[str]]:
    """Worker results → (phase results per impl, load figures, versions, errors)."""
    results = {impl: {} for impl in IMPLS}
    loads, versions, errors = {}, {}, []
    for res in raw:
        impl = res["impl"]
        if "error" in res:
            errors.append(f"{impl} {res.get('phases_requested', '')}: {res['error']} (log: {res['log']})")
            continue
        results[impl].update(res["phases"])
        versions[impl] = {"torch": res.get("torch"), "transformers": res.get("transformers")}
        if impl not in loads:  # the first process (the speed group) gives the load figures
            loads[impl] = {"load_s": res["load_s"], "rss_after_load_mib": res["rss_after_load_mib"]}
    return results, loads, versions, errors


def report(raw: list[dict], meta: dict, out_dir: Path) -> int:
    dtypes = [d for d in meta["args"]["dtypes"].split(",") if d]
    scale = [int(x) for x in meta["args"]["scale"].split(",") if x.strip()]
    results, loads, versions, errors = collect(raw)
    meta.update(versions=versions, errors=errors, notes=NOTES)
    if meta.get("equality") is None:
        meta["equality"] = equality(raw, out_dir)
    rows = compile_rows(results, meta["matmul_peak_flop_per_s"], dtypes, scale, loads, meta.get("equality"))
    scaling = scaling_summary(results, scale)
    hyde = {d: results["genembed"][f"hyde:{d}"] for d in dtypes if f"hyde:{d}" in results["genembed"]}
    text = render(rows, scaling, hyde, meta)
    (out_dir / "results.md").write_text(text)
    (out_dir / "results.json").write_text(json.dumps({"meta": meta, "equality": meta.get("equality"), "rows": rows,
                                                      "scaling": scaling, "hyde": hyde, "workers": raw}, indent=1))
    print()
    print(text)
    print(f"written: {out_dir / 'results.md'}, {out_dir / 'results.json'} (total {meta.get('wall_s', 0):.0f}s)")
    return 1 if errors else 0


def main(argv=None) -> int:
    args = parse_args(argv)
    out_dir = Path(args.out).resolve()  # (the workers run with the repository as their cwd)
    if args.rerender:  # the table again from a finished run's results.json (e.g. after editing this file)
        saved = json.loads((out_dir / "results.json").read_text())
        return report(saved["workers"], saved["meta"], out_dir)
    scale = [int(x) for x in args.scale.split(",") if x.strip()]
    dtypes = [d for d in args.dtypes.split(",") if d]
    if any(d not in ("fp32", "bf16") for d in dtypes):
        raise SystemExit("--dtypes takes fp32 and/or bf16")
    scale_impls = set(filter(None, args.scale_impls.split(",")))
    if scale_impls - set(IMPLS):
        raise SystemExit(f"--scale-impls takes {' and/or '.join(IMPLS)}, not {args.scale_impls!r}")
    out_dir.mkdir(parents=True, exist_ok=True)
    impls = [args.only] if args.only else list(IMPLS)
    machine = bc.machine_info()
    need_build = not ((checkpoint_dir(out_dir) / "run_config.yml").is_file()
                      and (out_dir / "raw" / "official__build.json").is_file())
    if ("official" in impls or need_build) and not args.no_setup:
        print("setting up the official implementation's venv (lab/benchmarks/setup_peer.sh) ...", flush=True)
        subprocess.run(["bash", str(HERE / "setup_peer.sh")], check=True)
    if not MAIN_PY.exists():
        raise SystemExit(f"{MAIN_PY} is missing: run scripts/setup.sh first")

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    t_start = time.perf_counter()
    inputs_path, peaks_path = out_dir / "inputs.json", out_dir / "matmul_peak.json"
    if args.resume and inputs_path.exists() and peaks_path.exists():
        inputs, peaks = json.loads(inputs_path.read_text()), json.loads(peaks_path.read_text())
        print(f"inputs and matmul peak kept from {out_dir}", flush=True)
    else:
        inputs = build_inputs(args, scale)
        inputs_path.write_text(json.dumps(inputs))
        peaks = matmul_peak(args.threads)
        peaks_path.write_text(json.dumps(peaks))
    print(f"matmul peak: fp32 {peaks['fp32'] / 1e9:.0f} GFLOP/s, bf16 {peaks['bf16'] / 1e9:.0f} GFLOP/s", flush=True)
    build = ensure_checkpoint(inputs, inputs_path, out_dir, args)["phases"]["build"]

    raw = []
    for group, phases in with_equality(plan(args, scale), args):
        for impl in impls:
            todo = phases_for(impl, phases, scale_impls)
            if todo:
                res = run_worker(impl, todo, inputs_path, out_dir, args)
                res["group"], res["phases_requested"] = group, ",".join(todo)
                raw.append(res)
    meta = {"backbone": "SmolLM2-135M-Instruct, GGUF Q4_1 dequantised to fp32", "machine": machine,
            "loadavg_after": bc.machine_info()["loadavg"], "threads": args.threads,
            "config": inputs["config"], "matmul_peak_flop_per_s": peaks,
            "checkpoint": {"path": str(checkpoint_dir(out_dir)), "backbone_dir": build["backbone_dir"],
                           "seed": build["seed"], "trainable_params": build["trainable_params"],
                           "special_token_ids": build["special_token_ids"], "encoding_mode": build["encoding_mode"],
                           "written_by": "llm2vec-gen 0.1.3 (peer_worker.py phase build)"},
            "wall_s": time.perf_counter() - t_start, "args": vars(args)}
    return report(raw, meta, out_dir)


if __name__ == "__main__":
    sys.exit(main())
