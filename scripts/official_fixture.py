"""Reference fixture from the OFFICIAL LLM2Vec-Gen code (llm2vec-gen==0.1.3), for comparing a
reimplementation against it token for token and number for number.

    bash scripts/official_env.sh                                         # the side venv, once
    .venv-official/bin/python scripts/official_fixture.py --out tests/fixtures/official

Runs only in .venv-official (the official package, transformers 4.56.2, peft 0.18.0, torch 2.13.0).
From genembed it imports one module, genembed/testing.py, for the tiny random llama.

What it writes under --out (the folder is wiped and rebuilt; nothing else is touched):

    backbone/              the tiny llama (genembed.testing.build_tiny_backbone, hidden 32, vocab 420)
                           with one change: its tokenizer prepends BOS "<s>" the way Llama-3's does
    model/                 an official-layout LLM2Vec-Gen checkpoint around it, written by the
                           official save paths: EncoderDecoderModel.save_pretrained (encoder/ PEFT
                           trainable-tokens adapter + config, reconstruction_mlp, alignment_mlp,
                           encoder_decoder_config.json), the tokenizer's save_pretrained (with the
                           added special tokens, left padding), llm2vec_gen.utils.save_args_to_yaml
                           (run_config.yml, from the official argument dataclasses) and the
                           trainer's torch.save(training_args) (training_args.bin)
    expected.safetensors   every tensor the official code produced (names listed in expected.json)
    expected.json          texts, instructions, token ids, losses, decode ids, versions, exact calls

run_config.yml says model_name_or_path: ../backbone. The official loader hands that string to
AutoModel.from_pretrained as it is, so it resolves against the current directory: this script
loads with the current directory set to model/. A reimplementation should resolve it against the
model folder (model/../backbone), which is the same folder.

Deterministic: one thread, fixed seeds, fixed file contents; a rerun rewrites identical bytes.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.metadata as md
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# ---------------------------------------------------------------------------------------------
# the fixture's parameters
SEED = 1234
SPECIAL_TOKENS = [f"<question{i}>" for i in range(1, 6)]  # official naming (conf/special_tokens/*.yaml)
N_COMPRESSION = 3  # encoding_mode last_3_tokens: 2 "thought" + 3 compression tokens
ALIGN_DIM = 24  # alignment MLP output = the teacher's hidden size (deliberately != hidden 32)
MAX_LENGTH = 512  # LLM2VecGenModel.encode default and ModelArguments.max_input_length
DECODE_TOKENS = 12

# The official instructions (llm2vec-gen README "Quick Start", retrieval example); the official
# MTEB wrapper (scripts/mteb_eval.py) builds the same string as instruction.strip() + " " + text.
INSTRUCTIONS = {
    "query": "Generate a passage that best answers this question: ",
    "document": "Summarize the following passage: ",
    "none": "",
}

LONG_TEXT = " ".join(
    f"step {i}: the sea is wide and blue and deep, so put the egg in boiling water for nine minutes."
    for i in range(60)
) + " THE END"
TEXTS = [
    "how do I boil an egg?",
    "Ünïcödé ✓ — naïve café 🧪👩🏽‍🔬 日本語のテキスト עברית\u200b zero\u00a0width\ttab e\u0301",
    "  what is the capital of france?\n",  # encode() does not strip: the spaces and newline stay
    LONG_TEXT,  # > 512 tokens: truncation, then the special tokens are written over the last 5
]
DECODE_TEXT_INDICES = [0, 1]  # decoded from the soft prompt, with the query instruction

TRAIN_ROWS = [  # (question, answer) as official DataSample rows; the collator strips both
    ("how do I boil an egg", "put the egg in boiling water for nine minutes"),
    ("write a poem about the sea 🌊", "the sea is wide and blue and deep"),
    ("  explain how a neural network learns  ",
     "it adjusts weights to reduce a loss by gradient descent, step by step, over many examples."),
]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@contextlib.contextmanager
def cwd(path: Path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def offline_torch(threads: int, deterministic: bool = True):
    """torch for these scripts: offline, `threads` threads, deterministic kernels, transformers quiet."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch
    import transformers

    torch.set_num_threads(threads)
    if deterministic:
        torch.use_deterministic_algorithms(True)
    transformers.logging.set_verbosity_error()
    return torch


def fresh_output(out: Path, what: str) -> Path:
    """`out` emptied (refused unless it is empty or holds an expected.json: `what`), with out/model/ made."""
    out = out.resolve()
    if out.exists():
        if any(out.iterdir()) and not (out / "expected.json").is_file():
            sys.exit(f"refusing to wipe {out}: not empty and not {what}")
        shutil.rmtree(out)
    (out / "model").mkdir(parents=True)
    return out


def official_losses(lm, batch: dict, teacher):
    """LLM2VecGenTrainer.compute_loss (the repository's scripts/train.py) on one collated batch, recon and
    align weights 1: (student states, the model call's outputs, whose loss is the reconstruction, alignment
    MSE of the mean over compression tokens, total)."""
    import torch
    from llm2vec_gen.losses import compute_mse_loss

    names = ("query_input_ids", "query_attention_mask", "answer_input_ids", "answer_attention_mask", "labels")
    lm.model.train()
    with torch.no_grad():
        student_states, outputs = lm.model(**{k: v for k, v in batch.items() if k in names})
        recon = outputs["loss"]
        align_total, mse = compute_mse_loss(student_states.mean(dim=1), teacher, mse_loss_weight=1.0)
    lm.model.eval()
    return student_states, outputs, mse, 1.0 * recon + align_total


def recorded_encode(lm, special_tokens: list[str]):
    """Check a loaded LLM2VecGenModel's tokenizer (its special tokens, left padding), put it in eval mode and
    record exactly what its encode() hands to EncoderDecoderModel.encode. Returns (the special ids, the
    record, a function that puts the plain encode back)."""
    tok = lm.tokenizer
    assert tok.additional_special_tokens == special_tokens and tok.padding_side == "left"
    lm.model.eval()
    fed: list[dict] = []
    orig_encode = lm.model.encode

    def recording_encode(query_input_ids, query_attention_mask, **kw):
        fed.append({"input_ids": query_input_ids.clone(), "attention_mask": query_attention_mask.clone()})
        return orig_encode(query_input_ids=query_input_ids, query_attention_mask=query_attention_mask, **kw)

    lm.model.encode = recording_encode
    return tok.convert_tokens_to_ids(special_tokens), fed, lambda: setattr(lm.model, "encode", orig_encode)


def build_backbone(folder: Path) -> None:
    """genembed's tiny llama; its tokenizer made to behave like Llama-3's: it prepends BOS (the
    bare tiny tokenizer adds nothing), so the fixture exercises the official code's BOS handling,
    and its saved config carries padding_side and model_input_names (see below). Vocabulary,
    ids and weights are build_tiny_backbone's, unchanged."""
    sys.path.insert(0, str(ROOT))
    from genembed.testing import build_tiny_backbone  # torch/transformers/tokenizers only

    sys.path.pop(0)
    from tokenizers.processors import TemplateProcessing
    from transformers import AutoTokenizer

    build_tiny_backbone(folder)
    # padding_side="left" goes into the saved tokenizer_config.json. The official trainer sets
    # tokenizer.padding_side = "left" as an attribute, which save_pretrained does NOT write (it
    # saves init kwargs only): without this, the official checkpoint would load right-padded.
    # model_input_names as Llama-3's tokenizer_config.json has them (no token_type_ids, which the
    # official LLM2VecGenModel.generate would pass on to EncoderDecoderModel.generate and fail).
    tok = AutoTokenizer.from_pretrained(folder, padding_side="left", model_input_names=["input_ids", "attention_mask"])
    bos = tok.bos_token
    tok._tokenizer.post_processor = TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tok.bos_token_id)]
    )
    tok.save_pretrained(folder)
    again = AutoTokenizer.from_pretrained(folder)
    assert again("a")["input_ids"][0] == tok.bos_token_id and again.padding_side == "left"
    assert list(again("a").keys()) == ["input_ids", "attention_mask"]


def build_official_model(model_dir: Path, log: list[str], backbone: str = "../backbone",
                         special_tokens: list[str] = SPECIAL_TOKENS, n_compression: int = N_COMPRESSION,
                         align_dim: int = ALIGN_DIM, special_token_config_name: str = "total_5",
                         batch_size: int = len(TRAIN_ROWS), delta_scale: float = 0.5, delta_shift: float = 0.1,
                         name: str = "fixture"):
    """An official EncoderDecoderModel built the way scripts/train.py main() builds one
    (lines 387-501: tokenizer + special tokens, config fields, AutoModel encoder resized and
    wrapped in a TrainableTokens adapter, frozen AutoModelForCausalLM decoder, two
    ProjectionModels), with seeded non-trivial values in everything trainable, and saved the way
    the official trainer saves a checkpoint (llm2vec_gen/trainer.py CustomTrainer._save) plus
    run_config.yml (scripts/train.py lines 553-555). Runs with cwd = model_dir.

    The defaults are the fixture's; scripts/official_parity_real.py builds the same around a real
    backbone (10 special tokens, last_10_tokens, alignment dim 384, the special rows drawn at the
    scale of the backbone's own embeddings: delta = randn * delta_scale + delta_shift)."""
    import torch
    from peft import TrainableTokensConfig, get_peft_model
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer
    from transformers.trainer import TRAINING_ARGS_NAME

    from llm2vec_gen.config import CustomTrainingArguments, DataArguments, ModelArguments, RunArguments
    from llm2vec_gen.models import EncoderDecoderModel, ProjectionModel
    from llm2vec_gen.utils import save_args_to_yaml

    model_args = ModelArguments(
        model_name_or_path=backbone, torch_dtype="float32", tokenizer_padding_side="left",
        special_tokens=list(special_tokens), special_token_config_name=special_token_config_name,
        max_input_length=MAX_LENGTH, add_reconstruction_mlp=True, add_alignment_mlp=True,
        encoding_mode=f"last_{n_compression}_tokens",
    )
    data_args = DataArguments(dataset_name=name)
    training_args = CustomTrainingArguments(
        output_dir=f"outputs/{name}", logging_dir=f"outputs/{name}/runs", report_to=[], seed=42,
        learning_rate=5e-4, max_steps=1, per_device_train_batch_size=batch_size,
        recon_loss_weight=1.0, align_loss_weight=1.0, freeze_decoder_fully=True,
        use_encoder_as_decoder=False, use_peft_for_encoder=False, use_cpu=True,
    )
    run_args = RunArguments(wandb_run_id=name)

    config = AutoConfig.from_pretrained(backbone)
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = model_args.tokenizer_padding_side
    config.tokenizer_original_num_tokens = len(tokenizer)
    tokenizer.add_special_tokens({"additional_special_tokens": list(special_tokens)})
    config.num_tokens = len(tokenizer)  # len(tokenizer) == vocab_size before adding (train.py 409-411)
    config.num_special_tokens = len(special_tokens)
    config.special_tokens = tokenizer.convert_tokens_to_ids(special_tokens)
    config.special_tokens_ids = tokenizer.convert_tokens_to_ids(special_tokens)
    config.torch_dtype = getattr(torch, model_args.torch_dtype)

    torch.manual_seed(SEED)  # resize_token_embeddings samples the new rows from the global RNG
    encoder = AutoModel.from_pretrained(backbone, config=config, torch_dtype=config.torch_dtype)
    encoder.resize_token_embeddings(len(tokenizer))
    encoder = get_peft_model(encoder, peft_config=TrainableTokensConfig(token_indices=config.special_tokens_ids))
    decoder = AutoModelForCausalLM.from_pretrained(backbone, config=config, torch_dtype=config.torch_dtype)
    for p in decoder.parameters():
        p.requires_grad = False
    recon = ProjectionModel(input_dim=encoder.config.hidden_size, output_dim=decoder.config.hidden_size,
                            dtype=encoder.config.torch_dtype)
    align = ProjectionModel(input_dim=encoder.config.hidden_size, output_dim=align_dim,
                            dtype=encoder.config.torch_dtype)

    # seeded, non-trivial trainable values: special-token rows unlike any existing row (and unlike
    # the resize-sampled base rows, which the adapter file also carries), full-rank projections
    g = torch.Generator().manual_seed(SEED + 1)
    hidden = encoder.config.hidden_size
    with torch.no_grad():
        delta = encoder.base_model.model.embed_tokens.trainable_tokens_delta["default"]
        delta.copy_(torch.randn(delta.shape, generator=g) * delta_scale + delta_shift)
        recon.projection.weight.copy_(torch.randn(recon.projection.weight.shape, generator=g) * (0.6 / hidden ** 0.5))
        recon.projection.bias.copy_(torch.randn(recon.projection.bias.shape, generator=g) * 0.05)
        align.projection.weight.copy_(torch.randn(align.projection.weight.shape, generator=g) / hidden ** 0.5)
        align.projection.bias.copy_(torch.randn(align.projection.bias.shape, generator=g) * 0.1)

    model = EncoderDecoderModel(
        encoder_model=encoder, decoder_model=decoder, encoding_mode=model_args.encoding_mode,
        reconstruction_mlp=recon, alignment_mlp=align,
        save_decoder=not training_args.use_encoder_as_decoder and not training_args.freeze_decoder_fully,
    )
    model.eval()

    # what CustomTrainer._save writes into a checkpoint folder
    model.save_pretrained(str(model_dir), state_dict=None, safe_serialization=training_args.save_safetensors)
    tokenizer.save_pretrained(str(model_dir))
    torch.save(training_args, os.path.join(str(model_dir), TRAINING_ARGS_NAME))
    # what scripts/train.py writes next to the checkpoints (outputs/<run_id>/run_config.yml); the
    # published checkpoints carry it in the model folder, where from_pretrained looks first
    for args in [run_args, data_args, model_args, training_args]:
        save_args_to_yaml(args, str(model_dir), name="run_config.yml")
    log += [
        f"scripts/train.py main() lines 387-501 re-enacted: AutoConfig/AutoTokenizer.from_pretrained('{backbone}'), "
        "tokenizer.padding_side='left', tokenizer.add_special_tokens({'additional_special_tokens': "
        f"{list(special_tokens)}}}), config.num_tokens/num_special_tokens/special_tokens/special_tokens_ids/torch_dtype set, "
        "AutoModel.from_pretrained(config=config, torch_dtype=float32).resize_token_embeddings(len(tokenizer)), "
        "get_peft_model(encoder, TrainableTokensConfig(token_indices=special ids)), "
        f"AutoModelForCausalLM.from_pretrained(config=config) frozen, ProjectionModel({hidden}->{decoder.config.hidden_size}), "
        f"ProjectionModel({hidden}->{align_dim}), "
        f"EncoderDecoderModel(encoding_mode='last_{n_compression}_tokens', save_decoder=False)",
        "seeded values written into trainable_tokens_delta['default'], reconstruction_mlp.projection, alignment_mlp.projection",
        "EncoderDecoderModel.save_pretrained('model', state_dict=None, safe_serialization=True)",
        "tokenizer.save_pretrained('model')",
        "torch.save(training_args, 'model/training_args.bin')",
        "llm2vec_gen.utils.save_args_to_yaml(args, 'model', name='run_config.yml') for run, data, model, training args",
    ]
    return model, tokenizer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "tests" / "fixtures" / "official"))
    args = ap.parse_args()
    t0 = time.time()

    torch = offline_torch(1)
    from safetensors.torch import save_file
    from transformers import AutoTokenizer

    from llm2vec_gen.dataset.base_dataset import DataSample
    from llm2vec_gen.dataset.data_collator import CustomCollator
    from llm2vec_gen.models import LLM2VecGenModel

    out = fresh_output(Path(args.out), "a fixture written by this script")
    build_backbone(out / "backbone")

    calls: list[str] = []
    tensors: dict[str, torch.Tensor] = {}
    with cwd(out / "model"):
        built, _ = build_official_model(out / "model", calls)
        # the official loader; cwd = model/ so run_config's '../backbone' resolves
        lm = LLM2VecGenModel.from_pretrained(str(out / "model"))
    calls.append("lm = LLM2VecGenModel.from_pretrained('<fixture>/model')  # cwd = <fixture>/model")
    assert lm.device == "cpu"
    tok = lm.tokenizer
    special_ids, fed, restore_encode = recorded_encode(lm, SPECIAL_TOKENS)

    enc_json: dict = {}
    max_dev_batch_vs_single = 0.0
    max_dev_saved_vs_built = 0.0
    for name, instr in INSTRUCTIONS.items():
        full = [instr + t for t in TEXTS]
        fed.clear()
        emb, soft = lm.encode(full, max_length=MAX_LENGTH, get_recon_hidden_states=True)
        batch_fed = fed[-1]
        tensors[f"encode/{name}/batch/embedding"] = emb
        tensors[f"encode/{name}/batch/soft_prompt"] = soft
        tensors[f"encode/{name}/batch/input_ids"] = batch_fed["input_ids"]
        tensors[f"encode/{name}/batch/attention_mask"] = batch_fed["attention_mask"]
        calls.append(f"emb, soft = lm.encode([INSTRUCTIONS['{name}'] + t for t in TEXTS], max_length={MAX_LENGTH}, "
                     "get_recon_hidden_states=True)  # one batch, left-padded")
        singles = []
        for i, text in enumerate(full):
            fed.clear()
            e1, s1 = lm.encode(text, max_length=MAX_LENGTH, get_recon_hidden_states=True)
            tensors[f"encode/{name}/single/{i}/embedding"] = e1[0]
            tensors[f"encode/{name}/single/{i}/soft_prompt"] = s1[0]
            ids = fed[-1]["input_ids"][0]
            tensors[f"encode/{name}/single/{i}/input_ids"] = ids
            assert bool(fed[-1]["attention_mask"].all())
            singles.append({"input_ids": ids.tolist(), "n_tokens": len(ids),
                            "truncated": len(tok(text)["input_ids"]) > MAX_LENGTH})
            max_dev_batch_vs_single = max(max_dev_batch_vs_single, float((e1[0] - emb[i]).abs().max()),
                                          float((s1[0] - soft[i]).abs().max()))
            # the in-memory model that was saved gives the same numbers
            with torch.no_grad():
                e2, _, s2 = built.encode(fed[-1]["input_ids"], fed[-1]["attention_mask"], return_decoder_inputs=True)
            max_dev_saved_vs_built = max(max_dev_saved_vs_built, float((e2.mean(dim=1)[0] - e1[0]).abs().max()),
                                         float((s2[0] - s1[0]).abs().max()))
        calls.append(f"e, s = lm.encode(INSTRUCTIONS['{name}'] + TEXTS[i], max_length={MAX_LENGTH}, "
                     "get_recon_hidden_states=True)  # each text alone, i = 0..3")
        enc_json[name] = {"instruction": instr, "full_texts": full, "single": singles,
                          "batch_shape": list(batch_fed["input_ids"].shape),
                          "batch_pad_counts": (batch_fed["attention_mask"] == 0).sum(dim=1).tolist()}
    restore_encode()

    # hazard check (not a fixture value): the same checkpoint with a right-padding tokenizer, which
    # is what the official save produces for a backbone whose tokenizer_config.json has no
    # padding_side. last_N_tokens then reads pad positions for the shorter rows of a batch.
    tok_right = AutoTokenizer.from_pretrained(str(out / "model"), padding_side="right")
    lm_right = LLM2VecGenModel(lm.model, tok_right, device="cpu")
    emb_right = lm_right.encode([INSTRUCTIONS["query"] + t for t in TEXTS], max_length=MAX_LENGTH)
    right_pad_diff = [float((emb_right[i] - tensors[f"encode/query/single/{i}/embedding"]).abs().max())
                      for i in range(len(TEXTS))]

    # ---- decode from the soft prompt (EncoderDecoderModel.generate; LLM2VecGenModel.generate
    # moves its inputs to "cuda" unconditionally, so on CPU the same call is made one level down,
    # with the arguments that wrapper builds)
    decodes = []
    dec_model = lm.model.decoder_model
    for i in DECODE_TEXT_INDICES:
        soft = tensors[f"encode/query/single/{i}/soft_prompt"].unsqueeze(0)
        prompt = tok(["" + "".join(tok.additional_special_tokens)], return_tensors="pt")  # generate('' , ...)
        ids, align_states, align_mask = lm.model.generate(
            **prompt, max_new_tokens=DECODE_TOKENS, decoder_inputs_embeds=soft, return_embeddings=True)
        assert align_mask is None
        text = tok.batch_decode(ids, skip_special_tokens=True, max_length=DECODE_TOKENS)[0]
        emb_again = align_states.mean(dim=1)[0]
        assert torch.equal(emb_again, tensors[f"encode/query/single/{i}/embedding"]) or \
            float((emb_again - tensors[f"encode/query/single/{i}/embedding"]).abs().max()) < 1e-6
        with torch.no_grad():
            first_logits = dec_model(inputs_embeds=soft).logits[0, -1]
        tensors[f"decode/{i}/token_ids"] = ids[0]
        tensors[f"decode/{i}/first_step_logits"] = first_logits
        decodes.append({"text_index": i, "instruction": "query", "token_ids": ids[0].tolist(), "text": text,
                        "stopped_early": ids.shape[1] < DECODE_TOKENS})
    calls.append("ids, states, _ = lm.model.generate(input_ids=tok([''.join(specials)]).input_ids, attention_mask=..., "
                 f"max_new_tokens={DECODE_TOKENS}, decoder_inputs_embeds=soft_prompt[None], return_embeddings=True)"
                 "; text = tok.batch_decode(ids, skip_special_tokens=True)  # soft_prompt = encode/query/single/i")
    calls.append("first_step_logits = lm.model.decoder_model(inputs_embeds=soft_prompt[None]).logits[0, -1]  # extra, for debugging")

    # ---- one training batch: official collator + EncoderDecoderModel.__call__ + compute_mse_loss,
    # as scripts/train.py LLM2VecGenTrainer.compute_loss (lines 86-117) does with recon/align weight 1
    collator = CustomCollator(tokenizer=tok, special_tokens=list(SPECIAL_TOKENS), padding="longest",
                              max_length=MAX_LENGTH, return_tensors="pt", teacher_special_tokens=None,
                              teacher_tokenizer=None)
    batch = collator([DataSample(id_=k, question=q, answer=a) for k, (q, a) in enumerate(TRAIN_ROWS)])
    teacher = torch.randn((len(TRAIN_ROWS), ALIGN_DIM), generator=torch.Generator().manual_seed(SEED + 2))
    captured = {}

    def capture_decoder(module, args_, kwargs):
        captured.update({k: kwargs[k].detach().clone() for k in ("inputs_embeds", "attention_mask", "labels")})

    hook = dec_model.register_forward_pre_hook(capture_decoder, with_kwargs=True)
    student_states, outputs, mse, total = official_losses(lm, batch, teacher)
    recon = outputs["loss"]
    hook.remove()
    for k, v in batch.items():
        tensors[f"train/collator/{k}"] = v
    tensors["train/teacher"] = teacher
    tensors["train/student_states"] = student_states
    tensors["train/decoder/inputs_embeds"] = captured["inputs_embeds"]
    tensors["train/decoder/attention_mask"] = captured["attention_mask"]
    tensors["train/decoder/labels"] = captured["labels"]
    # per-position log-probability of the shifted target (what the CE averages), [B, L-1]; the full
    # logits would be 3 x L x 420 floats
    shifted = captured["labels"][:, 1:]
    logp = torch.log_softmax(outputs["logits"][:, :-1].float(), dim=-1)
    target_logp = torch.where(shifted == -100, torch.zeros_like(shifted, dtype=logp.dtype),
                              logp.gather(-1, shifted.clamp(min=0)[..., None])[..., 0])
    assert abs(float(-target_logp.sum() / (shifted != -100).sum()) - float(recon)) < 1e-5
    tensors["train/decoder/target_logprob"] = target_logp
    calls += [
        "batch = CustomCollator(tokenizer=tok, special_tokens=specials, padding='longest', max_length=512, "
        "return_tensors='pt', teacher_special_tokens=None, teacher_tokenizer=None)([DataSample(id_=k, question=q, answer=a) ...])",
        "teacher = torch.randn((3, 24), generator=torch.Generator().manual_seed(SEED + 2))",
        "lm.model.train(); student_states, outputs = lm.model(query_input_ids=..., query_attention_mask=..., "
        "answer_input_ids=..., answer_attention_mask=..., labels=...)  # under torch.no_grad()",
        "recon = outputs['loss']; align_total, mse = llm2vec_gen.losses.compute_mse_loss(student_states.mean(dim=1), "
        "teacher, mse_loss_weight=1.0); total = 1.0 * recon + align_total",
    ]

    tensors = {k: v.detach().contiguous().cpu() for k, v in sorted(tensors.items())}
    save_file(tensors, str(out / "expected.safetensors"), metadata={"producer": "scripts/official_fixture.py"})

    def versions():
        return {p: md.version(p) for p in ("torch", "transformers", "peft", "llm2vec-gen", "tokenizers", "safetensors")}

    model_files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    expected = {
        "about": "Produced by scripts/official_fixture.py with the official llm2vec-gen code; see docs/official-format.md.",
        "versions": versions(),
        "seed": SEED,
        "dtype": "float32",
        "threads": 1,
        "special_tokens": SPECIAL_TOKENS,
        "special_token_ids": special_ids,
        "encoding_mode": f"last_{N_COMPRESSION}_tokens",
        "n_thought_tokens": len(SPECIAL_TOKENS) - N_COMPRESSION,
        "n_compression_tokens": N_COMPRESSION,
        "alignment_dim": ALIGN_DIM,
        "max_length": MAX_LENGTH,
        "tokenizer": {"bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id,
                      "pad_token_id": tok.pad_token_id, "padding_side": tok.padding_side,
                      "truncation_side": tok.truncation_side, "len": len(tok), "adds_bos": True},
        "model_folder": "model",
        "run_config_model_name_or_path": "../backbone",
        "model_name_or_path_resolution": "official: relative to the current directory (this script ran with cwd=model/); "
                                         "reimplementation: relative to the model folder -> <fixture>/backbone",
        "texts": TEXTS,
        "instructions": INSTRUCTIONS,
        "encode": enc_json,
        "decode": decodes,
        "decode_max_new_tokens": DECODE_TOKENS,
        "decode_eos_ids": "[encoder config eos_token_id] + [128001] (LlamaConfig)",
        "train": {
            "rows": [{"question": q, "answer": a} for q, a in TRAIN_ROWS],
            "collator_keys": sorted(batch.keys()),
            "query_input_ids": batch["query_input_ids"].tolist(),
            "answer_input_ids": batch["answer_input_ids"].tolist(),
            "labels": batch["labels"].tolist(),
            "decoder_labels": captured["labels"].tolist(),
            "decoder_attention_mask": captured["attention_mask"].tolist(),
            "recon_loss_weight": 1.0,
            "align_loss_weight": 1.0,
            "reconstruction_loss": float(recon),
            "alignment_mse_loss": float(mse),
            "total_loss": float(total),
        },
        "checks": {
            "max_abs_diff_batch_vs_single": max_dev_batch_vs_single,
            "max_abs_diff_loaded_vs_built": max_dev_saved_vs_built,
            "right_padding_hazard_max_abs_diff_per_text": right_pad_diff,
        },
        "tensors": {k: {"shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", "")} for k, v in tensors.items()},
        "calls": calls,
        "files": model_files + ["expected.json"],
    }
    text = json.dumps(expected, indent=1, ensure_ascii=False)
    # one line per list of numbers (token ids, shapes, masks), the rest indented
    text = re.sub(r"\[[-0-9.e,\s]*\]", lambda m: re.sub(r"\s+", "", m.group(0)).replace(",", ", "), text)
    (out / "expected.json").write_text(text + "\n", encoding="utf-8")
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"wrote {out} ({size / 1024:.0f} KiB, {len(tensors)} tensors) in {time.time() - t0:.1f}s")
    print(f"recon {float(recon):.6f}  mse {float(mse):.6f}  total {float(total):.6f}")
    print(f"batch-vs-single max diff {max_dev_batch_vs_single:.2e}  loaded-vs-built {max_dev_saved_vs_built:.2e}")
    print("expected.safetensors sha256", sha256(out / "expected.safetensors"))


if __name__ == "__main__":
    main()
