"""Write tests/fixtures/llm2vec/: a tiny LLM2Vec teacher in the layout the `llm2vec` package and the
McGill-NLP/LLM2Vec-* repos use, and the package's own embeddings of a few texts.

Run in the side venv (bash scripts/llm2vec_env.sh):  .venv-llm2vec/bin/python scripts/llm2vec_fixture.py

    base/     a tiny random llama (genembed.testing.build_tiny_backbone; its tokenizer adds BOS)
    mntp/     a LoRA adapter over it (adapter_config.json names "../base", read beside the adapter),
              with the base's config and tokenizer beside it, as the -mntp repos ship
    simcse/   a second LoRA adapter on top, with llm2vec_config.json (mean pooling, a short
              doc_max_length so that the longest text is cut to fewer words)
    embeddings.json  llm2vec 0.2.3's embeddings: FIRST+SECOND under each pooling mode, and FIRST alone

Every LoRA B matrix is random and non-zero, so each adapter changes the embeddings.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "llm2vec"
TEXTS = [
    "how do I boil an egg",
    "paris is the capital of france",
    "  write a poem about the sea  ",
    "explain how a neural network learns: it adjusts weights to reduce a loss by gradient descent, "
    "step after step, until the loss is small and the answers are good",
    "a",
    "summarize the following passage and generate a passage that best answers this question",
]
POOLING = ["mean", "weighted_mean", "last_token", "eos_token"]
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def randomize_lora(model, seed: int, scale: float) -> None:
    gen = torch.Generator().manual_seed(seed)
    for name, param in model.named_parameters():
        if "lora_" in name:
            param.data = torch.randn(param.shape, generator=gen) * scale


def main() -> None:
    import transformers
    from peft import LoraConfig, PeftModel, get_peft_model
    from tokenizers.processors import TemplateProcessing
    from transformers import AutoModel, AutoTokenizer

    import llm2vec
    from llm2vec import LLM2Vec

    sys.path.insert(0, str(ROOT))
    from genembed.testing import build_tiny_backbone

    torch.manual_seed(0)
    if OUT.exists():
        shutil.rmtree(OUT)
    base, mntp, simcse = OUT / "base", OUT / "mntp", OUT / "simcse"
    build_tiny_backbone(base)
    tokenizer = AutoTokenizer.from_pretrained(base)
    bos = tokenizer.bos_token
    tokenizer._tokenizer.post_processor = TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tokenizer.bos_token_id)])
    tokenizer.save_pretrained(base)
    settings = json.loads((base / "tokenizer_config.json").read_text())
    settings["model_input_names"] = ["input_ids", "attention_mask"]  # a llama takes no token_type_ids
    (base / "tokenizer_config.json").write_text(json.dumps(settings, indent=2))
    tokenizer = AutoTokenizer.from_pretrained(base)

    # the mntp adapter, trained (here: drawn) on the bare transformer, as llm2vec's MNTP saves it
    model = AutoModel.from_pretrained(base)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=TARGETS))
    randomize_lora(peft_model, seed=1, scale=0.3)
    peft_model.save_pretrained(mntp)
    config = json.loads((mntp / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = "../base"
    (mntp / "adapter_config.json").write_text(json.dumps(config, indent=2))
    shutil.copy(base / "config.json", mntp / "config.json")
    tokenizer.save_pretrained(mntp)

    # the second adapter, over the merged model
    merged = PeftModel.from_pretrained(AutoModel.from_pretrained(base), mntp).merge_and_unload()
    peft_model = get_peft_model(merged, LoraConfig(r=2, lora_alpha=4, lora_dropout=0.0,
                                                   target_modules=["q_proj", "v_proj", "down_proj"]))
    randomize_lora(peft_model, seed=2, scale=0.3)
    peft_model.save_pretrained(simcse)
    config = json.loads((simcse / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = "../mntp"
    (simcse / "adapter_config.json").write_text(json.dumps(config, indent=2))
    (simcse / "llm2vec_config.json").write_text(json.dumps(
        {"pooling_mode": "mean", "max_length": 64, "doc_max_length": 16, "skip_instruction": True}, indent=4))
    for folder in (base, mntp, simcse):  # nothing the loaders do not read
        for extra in ("README.md", "generation_config.json"):
            (folder / extra).unlink(missing_ok=True)

    results = {}
    os.chdir(mntp)  # transformers reads the adapter's relative base name from the working folder
    for mode in POOLING:
        encoder = LLM2Vec.from_pretrained(str(mntp), peft_model_name_or_path=str(simcse), pooling_mode=mode)
        vectors = encoder.encode(TEXTS, batch_size=4, show_progress_bar=False, device="cpu")
        results[f"mntp+simcse/{mode}"] = vectors.tolist()
    encoder = LLM2Vec.from_pretrained(str(mntp), pooling_mode="mean")
    results["mntp/mean"] = encoder.encode(TEXTS, batch_size=4, show_progress_bar=False, device="cpu").tolist()
    encoder = LLM2Vec.from_pretrained(str(base), pooling_mode="mean")
    results["base/mean"] = encoder.encode(TEXTS, batch_size=4, show_progress_bar=False, device="cpu").tolist()
    meta = {"texts": TEXTS, "llm2vec": llm2vec.__version__ if hasattr(llm2vec, "__version__") else "0.2.3",
            "transformers": transformers.__version__, "torch": torch.__version__, "embeddings": results}
    (OUT / "embeddings.json").write_text(json.dumps(meta, indent=1))
    size = sum(f.stat().st_size for f in OUT.rglob("*") if f.is_file())
    print(f"wrote {OUT} ({size / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
