"""Train-step time and peak GPU memory of the real backbones' *shapes* (random weights: the
weights cannot travel to an offline GPU machine, and time and memory depend only on the shape).
The default recipe's lengths (query cut to 128 tokens + 10 compression tokens; response cut to
64 tokens) are filled to the brim, so the numbers are the worst case of that recipe.
    python3 lab/gpu/gpu_scale.py                       # every shape, on the GPU
    python3 lab/gpu/gpu_scale.py --shapes tiny --device cpu   # a smoke run of the script itself
Prints one table row per (shape, setting); a failure (out of memory, say) prints as that row."""
import argparse
import gc
import json
import os
import tempfile
import time
import traceback
from pathlib import Path

import torch

import genembed.backbone as backbone_module
from genembed.backbone import Backbone, canonical_device
from genembed.recipe import TrainConfig
from genembed.testing import CORPUS, build_tiny_backbone
from genembed.train import train

SHAPES = {  # name: (architecture, config overrides)
    "tiny-qwen3": ("qwen3", dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                                 num_key_value_heads=2, head_dim=16, vocab_size=1000)),
    "tiny": ("llama", dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                           num_key_value_heads=2, vocab_size=1000)),
    "smollm2-135m": ("llama", dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                                   num_attention_heads=9, num_key_value_heads=3, vocab_size=49152)),
    "qwen3-8b": ("qwen3", dict(hidden_size=4096, intermediate_size=12288, num_hidden_layers=36,
                               num_attention_heads=32, num_key_value_heads=8, head_dim=128, vocab_size=151936,
                               tie_word_embeddings=False)),
}
# (dtype, autocast bf16, batch, gradient checkpointing) tried per shape, cheapest-to-fail last
SETTINGS = {
    "tiny": [("float32", False, 8, False), ("float32", False, 8, True)],
    "tiny-qwen3": [("float32", False, 8, False)],
    "smollm2-135m": [("float32", False, 32, False), ("bfloat16", True, 32, False), ("bfloat16", True, 32, True)],
    "qwen3-8b": [("bfloat16", True, 8, True), ("bfloat16", True, 8, False), ("bfloat16", True, 32, True)],
}


def register(shape: str, dtype: str, device: str, folder: Path) -> str:
    """A randomly initialised model of `shape`, made where it will run (an 8B model in seconds;
    writing and re-reading 16 GB would cost minutes) and handed to the backbone loader's cache under
    a name of its own, with the tiny test tokenizer (a model may hold more embedding rows than its
    tokenizer has tokens, as real ones often do)."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM, Qwen3Config, Qwen3ForCausalLM

    if not (folder / "tok").exists():
        build_tiny_backbone(folder / "tok")
    tokenizer = AutoTokenizer.from_pretrained(folder / "tok")
    arch, overrides = SHAPES[shape]
    config_cls, model_cls = (LlamaConfig, LlamaForCausalLM) if arch == "llama" else (Qwen3Config, Qwen3ForCausalLM)
    config = config_cls(max_position_embeddings=4096, bos_token_id=tokenizer.bos_token_id,
                        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                        **{"tie_word_embeddings": True, **overrides})
    default = torch.get_default_dtype()
    torch.set_default_dtype(getattr(torch, dtype))
    try:
        with torch.device(device):
            model = model_cls(config)
    finally:
        torch.set_default_dtype(default)
    model.eval().requires_grad_(False)
    name = f"random-{shape}"
    backbone_module._cache[(name, f"{dtype}@{canonical_device(device)}")] = Backbone(name, model, tokenizer)
    return name


def forget_backbones():
    backbone_module._cache.clear()
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def rows(n: int) -> list[dict]:
    long = " ".join(CORPUS * 8)  # far past both cut-offs
    return [{"id": str(i), "query": f"{i} {long}", "response": f"{i} {long}"} for i in range(n)]


def run(shape: str, folder: Path, setting, steps: int, device: str) -> str:
    dtype, bf16, batch, ckpt = setting
    start = time.perf_counter()
    backbone = register(shape, dtype, device, folder)
    built = time.perf_counter() - start
    responses = folder / "r.jsonl"
    responses.write_text("".join(json.dumps(r) + "\n" for r in rows(steps * batch)))
    cfg = TrainConfig(responses=str(responses), out_dir=str(folder / f"run-{dtype}-{bf16}-{batch}-{ckpt}"),
                      backbone=backbone, teacher="self", steps=steps, batch_size=batch, warmup_steps=1, w_rec=1.0,
                      dtype=dtype, bf16=bf16, gradient_checkpointing=ckpt, ridge_examples=8, save_every=10**6)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    label = f"{shape:<13} dtype={dtype:<8} autocast={bf16!s:<5} batch={batch:<3} ckpt={ckpt!s:<5}"
    try:
        model = train(cfg, show_progress_bar=False)
    except torch.OutOfMemoryError:
        forget_backbones()
        return f"{label}  out of GPU memory"
    except Exception:  # noqa: BLE001 — one failed setting must not hide the others' rows
        forget_backbones()
        return f"{label}  FAILED\n{traceback.format_exc(limit=4)}"
    log = [json.loads(line) for line in Path(cfg.out_dir, "log.jsonl").read_text().splitlines()]
    timed = sorted(r["seconds"] for r in log[2:]) or [log[-1]["seconds"]]
    peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else float("nan")
    del model
    gc.collect()
    forget_backbones()
    return (f"{label}  built in {built:4.0f} s  median step {timed[len(timed) // 2]:7.3f} s  "
            f"({batch / timed[len(timed) // 2]:6.1f} examples/s)  peak GPU memory {peak:6.2f} GiB")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", nargs="+", default=["smollm2-135m", "qwen3-8b"], choices=sorted(SHAPES))
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    os.environ["GENEMBED_DEVICE"] = args.device  # where train() puts the model
    if args.device == "cuda":
        print(f"device: {torch.cuda.get_device_name()}  torch {torch.__version__}", flush=True)
    for shape in args.shapes:
        with tempfile.TemporaryDirectory() as tmp:
            for setting in SETTINGS[shape]:
                print(run(shape, Path(tmp), setting, args.steps, args.device), flush=True)


if __name__ == "__main__":
    main()
