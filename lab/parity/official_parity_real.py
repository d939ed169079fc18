"""The official LLM2Vec-Gen code (llm2vec-gen==0.1.3) around the REAL backbone, SmolLM2-135M-Instruct:
an official-layout checkpoint built and saved by the official classes, and what the official code
computes from it, for lab/parity/official_parity.py to compare genembed with.

    bash scripts/official_env.sh                                                    # the side venv, once
    B=$(HF_HUB_OFFLINE=1 .venv/bin/python -c 'from genembed.backbone import transformers_path; \
        print(transformers_path("smollm2-135m-instruct"))')                         # genembed's de-quantised folder
    .venv-official/bin/python lab/parity/official_parity_real.py --backbone "$B" --out runs/official-real

Runs only in .venv-official (transformers 4.56.2, peft 0.18.0, torch 2.13.0). Reuses
scripts/official_fixture.py's build_official_model (scripts/train.py main() re-enacted, saved the way the
official trainer saves) with the paper's published shape: 0 thought + 10 compression tokens
(`special_tokens=total_10`, `encoding_mode: last_10_tokens`), alignment dim 384 (MiniLM's), fp32, seeded
special rows (at the scale of SmolLM2's own embedding rows) and seeded projections.

What it writes under --out (wiped and rebuilt; runs/ is git-ignored, the adapter alone is ~113 MB):

    backbone/              the --backbone folder made readable by transformers 4.56 (see below): config.json
                           and tokenizer files rewritten, model.safetensors hard-linked (else symlinked)
    model/                 the official checkpoint: encoder/ (PEFT trainable-tokens adapter with the whole
                           resized table, config), reconstruction_mlp, alignment_mlp,
                           encoder_decoder_config.json, tokenizer files, run_config.yml
                           (model_name_or_path: ../backbone), training_args.bin
    expected.safetensors   the official outputs (names in expected.json)
    expected.json          texts, instruction, ids, decode ids, losses, versions, calls, timings

Why backbone/ is not the --backbone folder itself: genembed's folder is written by transformers 5.x,
and transformers 4.56 (the official pin) reads it wrongly in two ways:
  * tokenizer_config.json says tokenizer_class "TokenizersBackend" (a 5.x class): AutoTokenizer raises
    ValueError, so the official build cannot even start;
  * config.json carries RoPE as `rope_parameters: {rope_theta: 100000.0, rope_type: default}` (5.x) and
    no top-level `rope_theta`: LlamaConfig 4.56 ignores the unknown key and uses its default rope_theta
    10000.0, silently: the model loads and computes something else (measured here, "hazard" in
    expected.json).
backbone/ is therefore the same weights and vocabulary with a 4.x config (`rope_theta` at the top,
`rope_scaling: null`, `torch_dtype`) and the same tokenizer.json under tokenizer_class
PreTrainedTokenizerFast (padding_side left and model_input_names [input_ids, attention_mask] in its
config, as the fixture's backbone, so that the official save keeps left padding), i.e. what the hub's
HuggingFaceTB/SmolLM2-135M-Instruct folder gives transformers 4.56.

Deterministic: fixed seeds, --threads (default 1) threads, fixed file contents.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.metadata as md
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from official_fixture import (MAX_LENGTH, SEED, TRAIN_ROWS, build_official_model, cwd, fresh_output,  # noqa: E402
                             official_losses, offline_torch, recorded_encode)

sys.path.pop(0)

N_SPECIAL = 10  # the paper's main runs: special_tokens=total_10, last_10_tokens (0 thought + 10 compression)
N_COMPRESSION = 10
SPECIAL_TOKENS = [f"<question{i}>" for i in range(1, N_SPECIAL + 1)]
ALIGN_DIM = 384  # all-MiniLM-L6-v2's width, genembed's default teacher
DECODE_TOKENS = 24
INSTRUCTION = "Generate a passage that best answers this question: "  # the official README's query instruction

LONG_TEXT = " ".join(
    f"Question {i}: my router keeps dropping the wifi connection every few minutes, the lights blink orange, "
    f"and restarting it only helps for a while; what should I check first?"
    for i in range(1, 26)
) + " Thanks in advance."
TEXTS = [
    "how do I reset my password?",
    "What is the difference between a virus and a bacterium?",
    "Can I bring a laptop in my carry-on luggage?",
    "why is the sky blue",
    "How long should I boil an egg for a soft yolk?",
    "Is it safe to leave the dishwasher running overnight — or should I wait until the morning? ☕",
    "  what's the capital of Australia?\n",  # encode() does not strip: the spaces and newline stay
    LONG_TEXT,  # > 512 tokens with the instruction: truncated, the 10 special tokens over the last 10
]
DECODE_TEXT_INDICES = [0, 1]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def compat_backbone(src: Path, dst: Path) -> dict:
    """dst: src's weights and tokenizer in a form transformers 4.56 reads as transformers 5.x reads src
    (see the module's docstring). Returns what was changed."""
    from transformers import AutoConfig, PreTrainedTokenizerFast

    dst.mkdir(parents=True)
    config = json.loads((src / "config.json").read_text())
    changes = {}
    rope = config.pop("rope_parameters", None)
    if rope is not None and "rope_theta" not in config:
        config["rope_theta"] = rope["rope_theta"]
        kind = rope.get("rope_type", "default")
        config["rope_scaling"] = None if kind == "default" else {k: v for k, v in rope.items() if k != "rope_theta"}
        changes["config.json"] = (f"rope_parameters {rope} -> rope_theta {config['rope_theta']}, "
                                  f"rope_scaling {config['rope_scaling']}")
    if "dtype" in config and "torch_dtype" not in config:
        config["torch_dtype"] = config.pop("dtype")
    (dst / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    for name in ("generation_config.json",):
        if (src / name).exists():
            shutil.copyfile(src / name, dst / name)
    weights = src / "model.safetensors"
    try:
        os.link(weights, dst / weights.name)
        changes["model.safetensors"] = f"hard link to {weights}"
    except OSError:
        os.symlink(weights.resolve(), dst / weights.name)
        changes["model.safetensors"] = f"symlink to {weights.resolve()}"

    tok_config = json.loads((src / "tokenizer_config.json").read_text())
    kwargs = {k: tok_config[k] for k in ("bos_token", "eos_token", "pad_token", "unk_token") if tok_config.get(k)}
    chat = src / "chat_template.jinja"
    tok = PreTrainedTokenizerFast(tokenizer_file=str(src / "tokenizer.json"), padding_side="left",
                                  model_input_names=["input_ids", "attention_mask"],
                                  clean_up_tokenization_spaces=False, **kwargs)
    if chat.exists():
        tok.chat_template = chat.read_text()
    tok.save_pretrained(str(dst))
    changes["tokenizer"] = (f"tokenizer_class {tok_config.get('tokenizer_class')!r} -> 'PreTrainedTokenizerFast' "
                            f"(same tokenizer.json), {kwargs}, padding_side left, "
                            f"model_input_names [input_ids, attention_mask]")
    loaded = AutoConfig.from_pretrained(str(dst))
    assert float(loaded.rope_theta) == float(config.get("rope_theta", loaded.rope_theta))
    return changes


def rope_hazard(src: Path, dst: Path, text: str) -> dict:
    """What transformers 4.56 computes from the unconverted --backbone folder: the same weights with
    rope_theta read as the 4.56 default (10000) instead of the folder's 100000. Last hidden states of one
    text, max |difference| from the converted folder's."""
    import torch
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    raw_config = AutoConfig.from_pretrained(str(src))
    tok = AutoTokenizer.from_pretrained(str(dst))
    ids = tok(text, return_tensors="pt")
    out = {"rope_theta_read_from_backbone_folder": float(raw_config.rope_theta),
           "rope_theta_in_backbone_folder": json.loads((src / "config.json").read_text()).get("rope_parameters")}
    states = []
    for folder in (src, dst):
        model = AutoModel.from_pretrained(str(folder), torch_dtype=torch.float32).eval()
        with torch.no_grad():
            states.append(model(**ids).last_hidden_state[0])
        del model
    out["n_tokens"] = int(ids["input_ids"].shape[1])
    out["last_hidden_state_max_abs_diff"] = float((states[0] - states[1]).abs().max())
    out["last_token_cosine"] = float(torch.nn.functional.cosine_similarity(states[0][-1], states[1][-1], dim=0))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backbone", required=True, help="HF folder of the backbone (genembed's de-quantised SmolLM2)")
    ap.add_argument("--out", default="runs/official-real")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    t0 = time.time()

    torch = offline_torch(args.threads)  # (transformers quiet too)
    from safetensors import safe_open
    from safetensors.torch import save_file
    from llm2vec_gen.dataset.base_dataset import DataSample
    from llm2vec_gen.dataset.data_collator import CustomCollator
    from llm2vec_gen.models import LLM2VecGenModel

    src = Path(args.backbone).resolve()
    out = fresh_output(Path(args.out), "a folder written by this script")
    seconds = {}
    changes = compat_backbone(src, out / "backbone")
    with safe_open(str(src / "model.safetensors"), framework="pt") as f:
        emb_std = float(f.get_tensor("model.embed_tokens.weight").std())

    calls: list[str] = []
    tensors: dict[str, torch.Tensor] = {}
    t = time.time()
    with cwd(out / "model"):
        built, _ = build_official_model(out / "model", calls, backbone="../backbone", special_tokens=SPECIAL_TOKENS,
                                        n_compression=N_COMPRESSION, align_dim=ALIGN_DIM,
                                        special_token_config_name=f"total_{N_SPECIAL}", batch_size=len(TRAIN_ROWS),
                                        delta_scale=emb_std, delta_shift=0.0, name="official-real")
        seconds["build_and_save"] = time.time() - t
        del built
        t = time.time()
        lm = LLM2VecGenModel.from_pretrained(str(out / "model"))
        seconds["official_from_pretrained"] = time.time() - t
    calls.append(f"seeded special rows: randn * {emb_std:.6g} (std of SmolLM2's embedding table) + 0")
    calls.append("lm = LLM2VecGenModel.from_pretrained('<out>/model')  # cwd = <out>/model")
    tok = lm.tokenizer
    special_ids, fed, restore_encode = recorded_encode(lm, SPECIAL_TOKENS)
    full = [INSTRUCTION + text for text in TEXTS]
    t = time.time()
    emb, soft = lm.encode(full, max_length=MAX_LENGTH, get_recon_hidden_states=True)
    seconds["official_encode_batch"] = time.time() - t
    tensors["encode/query/batch/embedding"] = emb
    tensors["encode/query/batch/soft_prompt"] = soft
    tensors["encode/query/batch/input_ids"] = fed[-1]["input_ids"]
    tensors["encode/query/batch/attention_mask"] = fed[-1]["attention_mask"]
    batch_pads = (fed[-1]["attention_mask"] == 0).sum(dim=1).tolist()
    calls.append(f"emb, soft = lm.encode([INSTRUCTION + t for t in TEXTS], max_length={MAX_LENGTH}, "
                 "get_recon_hidden_states=True)  # one batch, left-padded")
    singles, batch_vs_single = [], 0.0
    t = time.time()
    for i, text in enumerate(full):
        fed.clear()
        e1, s1 = lm.encode(text, max_length=MAX_LENGTH, get_recon_hidden_states=True)
        ids = fed[-1]["input_ids"][0]
        assert bool(fed[-1]["attention_mask"].all())
        tensors[f"encode/query/single/{i}/embedding"] = e1[0]
        tensors[f"encode/query/single/{i}/soft_prompt"] = s1[0]
        tensors[f"encode/query/single/{i}/input_ids"] = ids
        singles.append({"n_tokens": len(ids), "truncated": len(tok(text)["input_ids"]) + N_SPECIAL > MAX_LENGTH})
        batch_vs_single = max(batch_vs_single, float((e1[0] - emb[i]).abs().max()), float((s1[0] - soft[i]).abs().max()))
    seconds["official_encode_singles"] = time.time() - t
    calls.append(f"e, s = lm.encode(INSTRUCTION + TEXTS[i], max_length={MAX_LENGTH}, get_recon_hidden_states=True)"
                 f"  # each text alone, i = 0..{len(TEXTS) - 1}")
    restore_encode()

    decodes = []
    t = time.time()
    for i in DECODE_TEXT_INDICES:
        s = tensors[f"encode/query/single/{i}/soft_prompt"].unsqueeze(0)
        prompt = tok(["" + "".join(tok.additional_special_tokens)], return_tensors="pt")
        ids, align_states, _ = lm.model.generate(**prompt, max_new_tokens=DECODE_TOKENS, decoder_inputs_embeds=s,
                                                 return_embeddings=True)
        assert float((align_states.mean(dim=1)[0] - tensors[f"encode/query/single/{i}/embedding"]).abs().max()) < 1e-5
        with torch.no_grad():
            first_logits = lm.model.decoder_model(inputs_embeds=s).logits[0, -1]
        top2 = first_logits.topk(2).values
        tensors[f"decode/{i}/token_ids"] = ids[0]
        tensors[f"decode/{i}/first_step_logits"] = first_logits
        decodes.append({"text_index": i, "instruction": "query", "token_ids": ids[0].tolist(),
                        "text": tok.batch_decode(ids, skip_special_tokens=True)[0],
                        "stopped_early": ids.shape[1] < DECODE_TOKENS,
                        "first_step_top2_margin": float(top2[0] - top2[1])})
    seconds["official_decode"] = time.time() - t
    calls.append("ids, states, _ = lm.model.generate(input_ids=tok([''.join(specials)]).input_ids, attention_mask=..., "
                 f"max_new_tokens={DECODE_TOKENS}, decoder_inputs_embeds=soft_prompt[None], return_embeddings=True)"
                 "  # soft_prompt = encode/query/single/i")

    collator = CustomCollator(tokenizer=tok, special_tokens=list(SPECIAL_TOKENS), padding="longest",
                              max_length=MAX_LENGTH, return_tensors="pt", teacher_special_tokens=None,
                              teacher_tokenizer=None)
    batch = collator([DataSample(id_=k, question=q, answer=a) for k, (q, a) in enumerate(TRAIN_ROWS)])
    teacher = torch.randn((len(TRAIN_ROWS), ALIGN_DIM), generator=torch.Generator().manual_seed(SEED + 2))
    t = time.time()
    student_states, outputs, mse, total = official_losses(lm, batch, teacher)
    recon = outputs["loss"]
    seconds["official_train_batch"] = time.time() - t
    for k, v in batch.items():
        tensors[f"train/collator/{k}"] = v
    tensors["train/teacher"] = teacher
    tensors["train/student_states"] = student_states
    calls += [
        "batch = CustomCollator(tokenizer=tok, special_tokens=specials, padding='longest', max_length=512, "
        "return_tensors='pt', teacher_special_tokens=None, teacher_tokenizer=None)([DataSample(id_=k, question=q, "
        "answer=a) for TRAIN_ROWS of scripts/official_fixture.py])",
        f"teacher = torch.randn((3, {ALIGN_DIM}), generator=torch.Generator().manual_seed(SEED + 2))",
        "lm.model.train(); student_states, outputs = lm.model(query_input_ids=..., query_attention_mask=..., "
        "answer_input_ids=..., answer_attention_mask=..., labels=...)  # under torch.no_grad()",
        "recon = outputs['loss']; align_total, mse = compute_mse_loss(student_states.mean(dim=1), teacher, "
        "mse_loss_weight=1.0); total = 1.0 * recon + align_total",
    ]
    del lm

    t = time.time()
    hazard = rope_hazard(src, out / "backbone", full[0])
    seconds["rope_hazard_check"] = time.time() - t

    tensors = {k: v.detach().contiguous().cpu() for k, v in sorted(tensors.items())}
    save_file(tensors, str(out / "expected.safetensors"), metadata={"producer": "lab/parity/official_parity_real.py"})
    seconds["total"] = time.time() - t0
    model_files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    expected = {
        "about": "Produced by lab/parity/official_parity_real.py with the official llm2vec-gen code around SmolLM2-135M-"
                 "Instruct; compared with genembed by lab/parity/official_parity.py.",
        "versions": {p: md.version(p) for p in ("torch", "transformers", "peft", "llm2vec-gen", "tokenizers",
                                                 "safetensors")},
        "backbone_source": str(src),
        "backbone_source_model_sha256": sha256(src / "model.safetensors"),
        "backbone_changes": changes,
        "seed": SEED, "dtype": "float32", "threads": args.threads,
        "special_tokens": SPECIAL_TOKENS, "special_token_ids": special_ids,
        "encoding_mode": f"last_{N_COMPRESSION}_tokens", "n_thought_tokens": N_SPECIAL - N_COMPRESSION,
        "n_compression_tokens": N_COMPRESSION, "alignment_dim": ALIGN_DIM, "max_length": MAX_LENGTH,
        "special_row_scale": emb_std,
        "tokenizer": {"class": type(tok).__name__, "bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id,
                      "pad_token_id": tok.pad_token_id, "padding_side": tok.padding_side, "len": len(tok)},
        "model_folder": "model", "run_config_model_name_or_path": "../backbone",
        "instruction": INSTRUCTION, "texts": TEXTS,
        "encode": {"full_texts": full, "single": singles, "batch_shape": list(tensors["encode/query/batch/input_ids"].shape),
                   "batch_pad_counts": batch_pads},
        "decode": decodes, "decode_max_new_tokens": DECODE_TOKENS,
        "train": {"rows": [{"question": q, "answer": a} for q, a in TRAIN_ROWS],
                  "query_input_ids": batch["query_input_ids"].tolist(),
                  "answer_input_ids": batch["answer_input_ids"].tolist(),
                  "recon_loss_weight": 1.0, "align_loss_weight": 1.0,
                  "reconstruction_loss": float(recon), "alignment_mse_loss": float(mse), "total_loss": float(total)},
        "checks": {"max_abs_diff_batch_vs_single": batch_vs_single},
        "hazard_unconverted_backbone_folder": hazard,
        "tensors": {k: {"shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", "")} for k, v in tensors.items()},
        "calls": calls,
        "seconds": {k: round(v, 2) for k, v in seconds.items()},
        "files": model_files + ["expected.json"],
    }
    text = json.dumps(expected, indent=1, ensure_ascii=False)
    text = re.sub(r"\[[-0-9.e,\s]*\]", lambda m: re.sub(r"\s+", "", m.group(0)).replace(",", ", "), text)
    (out / "expected.json").write_text(text + "\n", encoding="utf-8")
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file() and p.name != "model.safetensors")
    print(f"wrote {out} ({size / 2**20:.0f} MiB besides the linked weights, {len(tensors)} tensors) "
          f"in {seconds['total']:.1f}s")
    print(f"recon {float(recon):.6f}  mse {float(mse):.6f}  total {float(total):.6f}")
    print(f"batch-vs-single max diff {batch_vs_single:.2e}; decode ids {[d['token_ids'] for d in decodes]}")
    print(f"hazard: the unconverted folder under transformers 4.56 reads rope_theta "
          f"{hazard['rope_theta_read_from_backbone_folder']}, last hidden states off by "
          f"{hazard['last_hidden_state_max_abs_diff']:.3g} (cosine of the last token {hazard['last_token_cosine']:.4f})")
    print("seconds", expected["seconds"])


if __name__ == "__main__":
    main()
