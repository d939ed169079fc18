"""Where the time of decoding one text goes, per backend: the forward itself against everything around it.

    .venv/bin/python lab/benchmarks/decode_profile.py [--model DIR] [--tokens 96] [--repeats 3]

Decodes one text's soft prompt greedily (batch 1; both backends write the same tokens, so they run
the same steps) and splits each step's wall time into the model
call (for onnx: the body session and the head session apart) and the rest (the loop, embedding
the last token, argmax, cache hand-over). Also the float32 weight bytes one step reads, and the
memory bandwidth that would make the body session's time: how close a step is to reading its
weights once. Prints a table; writes OUT.json if --out is given.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import genembed  # noqa: E402
from genembed.generate import greedy_from_embeddings  # noqa: E402


def profile(model, soft, tokens: int, repeats: int) -> dict:
    times = {"model call": 0.0}
    runtime = model.runtime
    if runtime is not None:  # time the two sessions inside the call
        sessions = {"body session": runtime.session("decode")[0], "head session": runtime.session("head")[0]}
        for name, session in sessions.items():
            times[name] = 0.0
            run = session.run

            def timed(*a, _run=run, _name=name, **k):
                t = time.perf_counter()
                out = _run(*a, **k)
                times[_name] += time.perf_counter() - t
                return out

            session.run = timed
    lm = runtime.lm if runtime is not None else model.backbone.model
    steps = [0]

    def counted(**kw):
        t = time.perf_counter()
        out = lm(**kw)
        times["model call"] += time.perf_counter() - t
        steps[0] += 1
        return out

    try:
        greedy_from_embeddings(model.backbone, soft, 2, lm=counted)  # warm
        for k in times:
            times[k] = 0.0
        steps[0] = 0
        start = time.perf_counter()
        for _ in range(repeats):
            greedy_from_embeddings(model.backbone, soft, tokens, lm=counted)
        wall = time.perf_counter() - start
    finally:
        if runtime is not None:
            for session in sessions.values():
                del session.run
    per = {k: 1000 * v / steps[0] for k, v in times.items()}
    per["rest of the loop"] = 1000 * wall / steps[0] - per["model call"]
    return {"steps": steps[0], "tokens_per_s": steps[0] / wall, "ms_per_step": per}


def bare_loop(runtime, start: int, tokens: int, repeats: int) -> float:
    """ms per step of the body and head sessions alone, fed random embeddings and growing caches."""
    body, names = runtime.session("decode")
    head, _ = runtime.session("head")
    m = runtime.manifest
    rng = np.random.default_rng(0)
    steps, seconds = 0, 0.0
    for repeat in range(repeats + 1):  # the first is the warm-up
        past = [np.zeros((1, m["kv_heads"], start, m["head_dim"]), np.float32) for _ in range(2 * m["layers"])]
        t = time.perf_counter()
        for s in range(tokens):
            total = start + s + 1
            feed = dict(zip(names, [rng.standard_normal((1, 1, runtime.embed.weight.shape[1]), dtype=np.float32),
                                    np.zeros((1, 1, 1, total), np.float32), np.array([[total - 1]], np.int64), *past]))
            hidden, *past = body.run(None, feed)
            head.run(None, {"hidden": hidden})
        if repeat:
            seconds += time.perf_counter() - t
            steps += tokens
    return 1000 * seconds / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None)
    ap.add_argument("--tokens", type=int, default=96)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    model = genembed.load(args.model)
    ids, mask = model.tokenize(["How do I boil an egg?"])
    with torch.no_grad():
        soft = model(ids, mask)[0]
    lm = model.backbone.model
    body_bytes = 4 * sum(p.numel() for n, p in lm.named_parameters() if "embed_tokens" not in n)
    head_bytes = 4 * lm.get_output_embeddings().weight.numel()
    result = {"threads": torch.get_num_threads(), "body_weight_mb": body_bytes / 1e6, "head_weight_mb": head_bytes / 1e6}
    backends = ("torch", "onnx") + (("openvino",) if importlib.util.find_spec("openvino") else ())
    for backend in backends:
        model.set_backend(backend)
        result[backend] = profile(model, soft, args.tokens, args.repeats)
        if backend != "torch":
            result[backend]["bare_session_loop_ms_per_step"] = bare_loop(model.runtime, soft.shape[0], args.tokens,
                                                                         args.repeats)
            body_ms = result[backend]["ms_per_step"]["body session"]
            result[backend]["body_gb_per_s_if_weights_read_once"] = body_bytes / 1e9 / (body_ms / 1000)
    print(f"weights read per step: body {body_bytes / 1e6:.0f} MB, head {head_bytes / 1e6:.0f} MB (float32)")
    for backend in backends:
        r = result[backend]
        parts = ", ".join(f"{k} {v:.1f} ms" for k, v in r["ms_per_step"].items())
        print(f"{backend}: {r['tokens_per_s']:.1f} tokens/s; per step: {parts}")
        if backend != "torch":
            print(f"  its sessions alone in a bare loop (synthetic inputs): {r['bare_session_loop_ms_per_step']:.1f} ms "
                  f"per step; the body session runs at {r['body_gb_per_s_if_weights_read_once']:.1f} GB/s of weights")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
