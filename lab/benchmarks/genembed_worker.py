"""Benchmark worker for genembed (runs in /work/main/.venv). Called by run.py, one process per
group of phases; prints and writes a JSON of measurements.

    python lab/benchmarks/genembed_worker.py --inputs INPUTS.json --checkpoint CKPT --phases encode:fp32,decode:fp32 --out OUT.json

The model is `genembed.load(CKPT)`: the official-layout folder the peer worker's phase build wrote
with the official code (the same weights the official worker loads), which genembed reads in the
official input layout (instruction + text as one string, no chat template, 512-token rows).

Phases: equality, encode:DTYPE, train:DTYPE, train-ckpt:DTYPE, decode:DTYPE, hyde:DTYPE, scale:N
(DTYPE: fp32 or bf16 autocast).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[2]))  # the genembed package (repo root)

import bench_common as bc  # noqa: E402


def build(inp: dict, checkpoint: str | None = None):
    """(backbone, model, load seconds): genembed.load(checkpoint), or without one (an old run's inputs)
    a freshly initialised model in genembed's own layout."""
    cfg = inp["config"]
    t0 = time.perf_counter()
    if checkpoint:
        import genembed

        model = genembed.load(checkpoint)
        c = model.config
        if c.input_layout != "official" or (c.num_thought_tokens, c.num_compression_tokens, c.embedding_dim) != (
                cfg["num_thought_tokens"], cfg["num_compression_tokens"], cfg["embedding_dim"]):
            raise SystemExit(f"{checkpoint}: layout {c.input_layout}, T={c.num_thought_tokens}, "
                             f"C={c.num_compression_tokens}, dim {c.embedding_dim} is not this run's: rebuild it")
        model.eval()
        return model.backbone, model, time.perf_counter() - t0
    from genembed.backbone import load_backbone
    from genembed.model import GenEmbed

    bb = load_backbone("smollm2-135m-instruct")
    model = GenEmbed.create(bb, embedding_dim=cfg["embedding_dim"], teacher="all-minilm-l6-v2", seed=cfg["seed"],
                            num_thought_tokens=cfg["num_thought_tokens"],
                            num_compression_tokens=cfg["num_compression_tokens"],
                            max_text_tokens=cfg["max_text_tokens"])
    model.eval()
    return bb, model, time.perf_counter() - t0


def phase_equality(model, inp, out_path: str) -> dict:
    """The fp32 embeddings of the first batch (bc.equality_batch), written as .npy for run.py to
    compare with the official code's of the same checkpoint."""
    texts, instr, bs = bc.equality_batch(inp)
    emb = model.encode(texts, instruction=instr, batch_size=bs, show_progress_bar=False)
    return bc.save_embeddings(out_path, emb)


def phase_encode(model, bb, inp, bf16: bool) -> dict:
    cfg = inp["config"]
    texts = inp["texts"][: cfg["texts"]]
    bs, instr = cfg["batch_size"], inp["instruction"]
    bc.reset_peak_rss()
    for _ in range(cfg["warmup"]):
        model.encode(texts[:bs], instruction=instr, batch_size=bs, bf16=bf16, show_progress_bar=False)
    rec = bc.ShapeRecorder(bb.model.base_model)
    times = []
    for r in range(cfg["repeats"]):
        rec.clear()
        with bc.timer(times):
            model.encode(texts, instruction=instr, batch_size=bs, bf16=bf16, show_progress_bar=False)
    dims = bc.llama_dims(bb.config)
    flops = rec.flops(dims) + _projection_flops(model, len(texts))
    rec.remove()
    med = bc.median(times)
    real = sum(len(r) for r in _prompt_rows(model, texts, instr)) + len(texts) * _n_special(model)
    # the same pass once more without the shared-head cache: what that lever is worth here
    model.prefix_cache.enabled, off = False, []
    with bc.timer(off):
        model.encode(texts, instruction=instr, batch_size=bs, bf16=bf16, show_progress_bar=False)
    model.prefix_cache.enabled = True
    peak = bc.peak_rss_mib()
    return {"seconds": times, "median_s": med, "texts": len(texts), "texts_per_s": len(texts) / med,
            "flops_per_pass": flops, "flop_per_s": flops / med, "padded_tokens": rec.tokens(),
            "real_tokens": real, "mean_tokens_per_text": real / len(texts), "peak_rss_mib": peak,
            "head_cache_off_s": off[0], "texts_per_s_head_cache_off": len(texts) / off[0]}


def _n_special(model) -> int:
    return model.config.num_thought_tokens + model.config.num_compression_tokens


def _projection_flops(model, n: int) -> float:
    h, d, c = model.config.hidden_size, model.config.embedding_dim, model.config.num_compression_tokens
    return 2.0 * n * c * (h * h + h * d)


def _prompt_rows(model, texts, instruction):
    """The encoder's ids per text in the model's own layout (special tokens not included)."""
    return model.token_rows(texts, model.resolve_instruction(instruction))


def train_batch(model, inp) -> tuple[list[list[int]], list[list[int]]]:
    """The benchmark's training batch as genembed tokenises it: (query rows, response rows). In the
    official layout: instruction + query as one string (what the official collator gets as its
    question), and the collator's reconstruction targets (response + "<|end_of_text|>", BOS first)."""
    from genembed.inputs import official_response_ids, prompt_ids, response_ids

    cfg, tr, tok = inp["config"], inp["train"], model.backbone.tokenizer
    if model.config.input_layout == "official":
        q_rows = model.token_rows(tr["queries"], model.resolve_instruction(inp["instruction"]))
        return q_rows, official_response_ids(tok, tr["responses"], cfg["peer_max_input_length"])
    q_rows = prompt_ids(tok, tr["queries"], model.resolve_instruction(inp["instruction"]), cfg["max_query_tokens"])
    return q_rows, response_ids(tok, tr["responses"], cfg["max_response_tokens"])


def phase_train(model, bb, inp, bf16: bool, checkpointing: bool = False) -> dict:
    import torch
    from genembed.train import batch_loss

    cfg = inp["config"]
    q_rows, r_rows = train_batch(model, inp)
    targets = torch.tensor(inp["train"]["targets"], dtype=torch.float32)
    # the official weights (recon 1, align 1) on an official-layout model, so that the first step's
    # losses are the official code's; genembed's own default otherwise (a weight does not change the cost)
    w_align = 1.0 if model.config.input_layout == "official" else float(cfg["embedding_dim"])
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    bc.reset_peak_rss()
    rss0 = bc.rss_mib()
    times, losses = [], []
    for step in range(cfg["warmup"] + cfg["steps"]):
        t0 = time.perf_counter()
        loss, rec, align = batch_loss(model, q_rows, r_rows, targets, w_rec=1.0, w_align=w_align, bf16=bf16,
                                      checkpointing=checkpointing)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        dt = time.perf_counter() - t0
        losses.append([float(rec.detach()), float(align.detach())])
        if step >= cfg["warmup"]:
            times.append(dt)
    model.eval()
    return {"seconds": times, "median_s": bc.median(times), "batch": len(q_rows),
            "rss_before_mib": rss0, "peak_rss_mib": bc.peak_rss_mib(),
            "query_tokens": sum(map(len, q_rows)) + len(q_rows) * _n_special(model),
            "response_tokens": sum(map(len, r_rows)), "losses_rec_align": losses}


def phase_decode(model, bb, inp, bf16: bool) -> dict:
    import torch

    from genembed.generate import greedy_from_embeddings

    cfg = inp["config"]
    texts = inp["texts"][: cfg["batch_size"]]
    ids, mask = model.tokenize(texts, model.resolve_instruction(inp["instruction"]))
    ctx = torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=bf16)
    with torch.no_grad(), ctx:
        soft, _ = model(ids, mask)
        lm = model.runtime.lm if model.runtime is not None else None  # (--backend)
        greedy_from_embeddings(model.backbone, soft, max_new_tokens=2, lm=lm)  # warm-up
    times, steps, calls = [], [], [0]

    def counted(**kw):  # one call per decoding step, on either backend
        calls[0] += 1
        return (lm or model.backbone.model)(**kw)

    for _ in range(cfg["repeats"]):
        calls[0] = 0
        with torch.no_grad(), ctx, bc.timer(times):
            greedy_from_embeddings(model.backbone, soft, max_new_tokens=cfg["decode_tokens"], lm=counted)
        steps.append(calls[0])
    med = bc.median(times)
    n_steps = bc.median(steps)
    return {"seconds": times, "median_s": med, "batch": len(texts), "steps": steps,
            "max_new_tokens": cfg["decode_tokens"], "tokens_per_s": len(texts) * n_steps / med,
            "kv_cache": True}


def phase_hyde(model, bb, inp, bf16: bool) -> dict:
    """HyDE baseline: the backbone writes an answer, MiniLM embeds it; against genembed's encode."""
    from genembed.generate import answer_queries
    from genembed.teachers import SentenceTransformerTeacher

    cfg = inp["config"]
    texts = inp["texts"][: cfg["hyde_texts"]]
    bs = cfg["batch_size"]
    teacher = SentenceTransformerTeacher("all-minilm-l6-v2")
    queries = [(f"q{i}", t) for i, t in enumerate(texts)]
    with tempfile.TemporaryDirectory() as tmp:  # warm-up on one small batch
        answer_queries(bb, queries[:2], Path(tmp) / "w.jsonl", max_new_tokens=2, batch_size=bs,
                       max_query_tokens=cfg["max_text_tokens"], bf16=bf16, show_progress_bar=False)
    teacher.embed(texts[:2])
    model.encode(texts[:bs], instruction=inp["instruction"], batch_size=bs, bf16=bf16, show_progress_bar=False)
    gen_t, emb_t, enc_t, lengths = [], [], [], []
    for _ in range(cfg["repeats"]):
        with tempfile.TemporaryDirectory() as tmp:
            with bc.timer(gen_t):
                rows = answer_queries(bb, queries, Path(tmp) / "r.jsonl", max_new_tokens=cfg["hyde_tokens"],
                                      batch_size=bs, max_query_tokens=cfg["max_text_tokens"], bf16=bf16,
                                      show_progress_bar=False)
        responses = [r["response"] for r in rows]
        lengths.append(sum(len(x) for x in bb.tokenizer(responses, add_special_tokens=False)["input_ids"]))
        with bc.timer(emb_t):
            teacher.embed(responses, batch_size=bs)
        with bc.timer(enc_t):
            model.encode(texts, instruction=inp["instruction"], batch_size=bs, bf16=bf16, show_progress_bar=False)
    n = len(texts)
    g, e, c = bc.median(gen_t), bc.median(emb_t), bc.median(enc_t)
    return {"texts": n, "hyde_tokens": cfg["hyde_tokens"], "generate_s": gen_t, "embed_s": emb_t, "encode_s": enc_t,
            "hyde_s_per_text": (g + e) / n, "encode_s_per_text": c / n, "hyde_over_encode": (g + e) / c,
            "mean_response_tokens": bc.median(lengths) / n}


def phase_scale(model, bb, inp, n: int) -> dict:
    # embeddings stream into a .npy memory map, as `genembed encode` does, so memory stays flat in n
    with tempfile.TemporaryDirectory() as tmp:
        return bc.scale_phase(lambda texts, instruction, bs, bf16: model.encode(
            texts, instruction=instruction, batch_size=bs, show_progress_bar=False, bf16=bf16,
            output_path=Path(tmp) / "embeddings.npy"), inp, n)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", help="the run's official-layout folder (default: a fresh genembed model)")
    ap.add_argument("--backend", default="torch", help="genembed's inference backend (backends.py)")
    args, inp = bc.worker_setup(ap)
    import torch
    import transformers

    rss_start = bc.rss_mib()
    bb, model, load_s = build(inp, args.checkpoint)
    model.set_backend(args.backend)  # (an onnx export is made once, before any timing)
    result = {"impl": "genembed", "load_s": load_s, "rss_after_load_mib": bc.rss_mib(),
              "rss_start_mib": rss_start, "threads": torch.get_num_threads(), "torch": torch.__version__,
              "transformers": transformers.__version__, "checkpoint": args.checkpoint,
              "input_layout": model.config.input_layout, "backend": args.backend, "phases": {}}
    bc.run_phases("genembed", args.phases, {
        "equality": lambda _: phase_equality(model, inp, args.out),
        "encode": lambda arg: phase_encode(model, bb, inp, arg == "bf16"),
        "train": lambda arg: phase_train(model, bb, inp, arg == "bf16"),
        "train-ckpt": lambda arg: phase_train(model, bb, inp, arg == "bf16", checkpointing=True),  # --gradient-checkpointing
        "decode": lambda arg: phase_decode(model, bb, inp, arg == "bf16"),
        "hyde": lambda arg: phase_hyde(model, bb, inp, arg == "bf16"),
        "scale": lambda arg: phase_scale(model, bb, inp, int(arg)),
    }, result, args.out)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
