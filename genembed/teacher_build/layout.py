"""The folders a built teacher is made of, laid out as the `llm2vec` package and the McGill-NLP/LLM2Vec-*
repos lay them out (genembed.teachers reads the same layout):

    mntp/     adapter_config.json (naming the base model: a genembed backbone alias, an absolute
              folder, or a hub id),
              adapter_model.safetensors (the MNTP LoRA over the bare transformer), the base's config.json
              and tokenizer files, llm2vec_config.json
    simcse/   adapter_config.json, adapter_model.safetensors (the SimCSE LoRA over the MNTP-merged
              model), llm2vec_config.json

peft saves the adapters; adapter_config.json then keeps only the keys peft 0.13 knows (the version the
llm2vec package runs with refuses the others), which newer peft versions read as well. Each folder is
written whole beside its final name and renamed into place (genembed.atomic.write_folder).
"""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from ..atomic import write_folder

ADAPTER_CONFIG, ADAPTER_WEIGHTS, LLM2VEC_CONFIG = "adapter_config.json", "adapter_model.safetensors", "llm2vec_config.json"
# LoraConfig's fields in peft 0.13.2, as its adapter_config.json holds them (runtime_config is never saved)
PEFT_013_KEYS = frozenset([
    "alpha_pattern", "auto_mapping", "base_model_name_or_path", "bias", "fan_in_fan_out", "inference_mode",
    "init_lora_weights", "layer_replication", "layers_pattern", "layers_to_transform", "loftq_config", "lora_alpha",
    "lora_dropout", "megatron_config", "megatron_core", "modules_to_save", "peft_type", "r", "rank_pattern",
    "revision", "target_modules", "task_type", "use_dora", "use_rslora"])
# how the teacher embeds (llm2vec's own defaults: mean pooling, rows of 512 tokens, texts of 400)
LLM2VEC_SETTINGS = {"pooling_mode": "mean", "max_length": 512, "doc_max_length": 400, "skip_instruction": True}
# what a model folder holds beside its weights that a reader of the -mntp folder needs
BASE_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
              "vocab.json", "merges.txt", "added_tokens.json", "chat_template.jinja")


def base_reference(backbone: str, where: str) -> str:
    """How adapter_config.json names the base: a backbone genembed ships by its alias (its de-quantised folder
    lives in a per-machine cache), another local folder by its absolute path, a hub id as it is."""
    from ..backbone import ALIASES

    if backbone in ALIASES:
        return backbone
    path = Path(where).expanduser()
    return str(path.resolve()) if path.is_dir() else where


def base_side_files(where: str, into: Path) -> dict[str, Path]:
    """The base's config and tokenizer files (BASE_FILES), by name: read from its folder, or for a hub id
    saved by transformers into `into` first."""
    path = Path(where).expanduser()
    if not path.is_dir():
        from transformers import AutoConfig, AutoTokenizer

        path = into
        AutoConfig.from_pretrained(where).save_pretrained(path)
        AutoTokenizer.from_pretrained(where).save_pretrained(path)
    return {name: path / name for name in BASE_FILES if (path / name).is_file()}


def write_adapter(folder: Path, encoder, base: str, beside: dict[str, Path] | None = None) -> Path:
    """Write the PEFT model `encoder`'s adapter into `folder` (replacing it whole): its config naming
    `base`, its weights, llm2vec_config.json, and copies of the files in `beside`."""
    with tempfile.TemporaryDirectory(prefix=".adapter-", dir=Path(folder).parent) as tmp:
        encoder.save_pretrained(tmp)
        config = json.loads((Path(tmp) / ADAPTER_CONFIG).read_text(encoding="utf-8"))
        config = {k: v for k, v in config.items() if k in PEFT_013_KEYS}
        config["base_model_name_or_path"] = base
        config["inference_mode"] = True
        if isinstance(config.get("target_modules"), list):
            config["target_modules"] = sorted(config["target_modules"])
        text = json.dumps(config, indent=2, sort_keys=True) + "\n"
        weights = Path(tmp) / ADAPTER_WEIGHTS
        files = {ADAPTER_CONFIG: lambda p: p.write_text(text, encoding="utf-8"),
                 ADAPTER_WEIGHTS: lambda p: shutil.copyfile(weights, p),
                 LLM2VEC_CONFIG: lambda p: p.write_text(json.dumps(LLM2VEC_SETTINGS, indent=4) + "\n", encoding="utf-8")}
        for name, source in (beside or {}).items():
            files[name] = lambda p, source=source: shutil.copyfile(source, p)
        return write_folder(folder, files)
