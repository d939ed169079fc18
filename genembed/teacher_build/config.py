"""Every setting of `genembed teacher build`, its default and its help (the command's options are
built from these fields, as `genembed train`'s are from TrainConfig).

The defaults are the original LLM2Vec code's (McGill-NLP/llm2vec, train_configs/mntp/Llama2.json and
train_configs/simcse/Llama2.json, experiments/run_mntp.py and run_simcse.py): MNTP 1,000 steps of 32
blocks of 512 tokens, 20% of the tokens masked, lr 5e-5 (the Hugging Face Trainer's default: the config
names none); SimCSE 1,000 steps of 128 texts cut to 128 tokens, attention dropout 0.3, lr 3e-5, loss
scale 20 (temperature 0.05); LoRA r 16, alpha 2r, dropout 0.05 on every projection of every layer;
linear decay to 0 without warm-up, AdamW without weight decay, gradient norm clipped at 1 (the
Trainer's defaults). That is a GPU budget; on a CPU pass smaller steps, batches and lengths.
Light on purpose: no torch import.
"""
from __future__ import annotations

from dataclasses import dataclass

from types import MappingProxyType
from typing import Mapping

from ..errors import InputError
from ..recipe import DTYPES, Recipe, setting

# settings that change how a build computes, not what it computes: a build may resume under other values
# (not mntp_micro_batch: the LoRA dropout draws its masks micro-batch by micro-batch)
RESULT_NEUTRAL = ("out_dir", "save_every", "gradient_checkpointing")


# the named build recipes (`genembed teacher build --recipe NAME`, TeacherBuildConfig.from_recipe)
TEACHER_RECIPES: Mapping[str, Recipe] = MappingProxyType({
    # the field defaults: the LLM2Vec paper's GPU budget
    "llm2vec": Recipe("the LLM2Vec paper's: MNTP 1,000 steps of 32 x 512 tokens, SimCSE 1,000 steps of 128 texts "
                      "(a GPU budget)", MappingProxyType({})),
    # the bundled SmolLM2 teacher's (scripts/train_self_supervised.sh): the paper's recipe scaled to about 45 min
    # on 2 idle AVX2 cores (2026-12-07, runs/.../log.jsonl: MNTP 8-10 s a step, SimCSE 22-26 s a step); a higher
    # learning rate than the paper's for the few steps. SimCSE's in-batch task is easy at batch 16 (its loss falls
    # from 0.39 to 0.18 in one step), so it gets the fewer steps
    "cpu": Recipe("the paper's scaled to 2 CPU cores: MNTP 150 steps of 8 x 128 tokens, SimCSE 50 steps of 16 texts "
                  "of 64 tokens, learning rate 2e-4", MappingProxyType(dict(
                      mntp_steps=150, mntp_batch_size=8, mntp_max_length=128, mntp_lr=2e-4,
                      simcse_steps=50, simcse_batch_size=16, simcse_max_length=64, simcse_lr=2e-4, save_every=10))),
})


class TeacherBuildError(InputError):
    """A teacher-build setting, folder or text source genembed cannot use (the message names which)."""


@dataclass
class TeacherBuildConfig:
    out_dir: str = setting(..., "Build folder: mntp/ and simcse/ (the teacher), log.jsonl, loss plots, resume "
                           "state.", ("--out", "-o"))
    backbone: str = setting("smollm2-135m-instruct", "The causal LM: alias, .gguf file, folder or hub id "
                            "(a Llama, Mistral, Qwen2, Qwen3 or Gemma model).")
    texts: str = setting("sharegpt", "Unlabeled training texts: 'sharegpt' (the queries and answers of ShareGPT's "
                         "training split) or a file: .jsonl (key --field) or text, one per line.")
    field: str = setting("text", "Key of the text in a --texts JSONL.")
    max_texts: int = setting(4000, "Use only the first N texts (0: all).")
    # -- MNTP --------------------------------------------------------------------------------------------
    mntp_steps: int = setting(1000, "MNTP optimiser steps (0: no MNTP, the mntp/ adapter is the identity).")
    mntp_batch_size: int = setting(32, "MNTP blocks per step.")
    mntp_micro_batch: int = setting(0, "MNTP blocks per forward pass, the step's gradient summed over them "
                                    "(0: the whole batch at once; less: less memory, the same loss up to the LoRA dropout's draws).")
    mntp_lr: float = setting(5e-5, "MNTP learning rate (linear decay to 0).")
    mntp_max_length: int = setting(512, "MNTP block length in tokens (the texts are packed into blocks).")
    mask_rate: float = setting(0.2, "Share of each block's tokens masked and predicted (80% of them replaced by "
                               "the mask token, 10% by a random token, 10% left as they are).")
    # -- SimCSE ------------------------------------------------------------------------------------------
    simcse_steps: int = setting(1000, "SimCSE optimiser steps (0: no SimCSE, the teacher is mntp/ alone).")
    simcse_batch_size: int = setting(128, "SimCSE texts per step (each seen twice; the others are its negatives).")
    simcse_lr: float = setting(3e-5, "SimCSE learning rate (linear decay to 0).")
    simcse_max_length: int = setting(128, "SimCSE texts are cut to this many tokens.")
    simcse_dropout: float = setting(0.3, "SimCSE attention dropout (the noise that makes the two views differ).")
    temperature: float = setting(0.05, "SimCSE temperature: cosine similarities are divided by it.")
    # -- both --------------------------------------------------------------------------------------------
    lora_r: int = setting(16, "LoRA rank of both adapters.")
    lora_alpha: int | None = setting(None, "LoRA alpha of both adapters (default: 2 x rank).")
    lora_dropout: float = setting(0.05, "LoRA dropout of both adapters.")
    clip_grad_norm: float = setting(1.0, "Gradient norm clipping.")
    seed: int = setting(0, "Seed of the LoRA initialisation, the masking, the dropout and the data order.")
    save_every: int = setting(50, "Write the resume state every N steps.")
    bf16: bool = setting(False, "bf16 autocast (CPU or GPU).")
    dtype: str = setting("float32", "The backbone's weights: float32, bfloat16 or float16 (the LoRA weights stay "
                         "float32).")
    gradient_checkpointing: bool = setting(False, "Recompute activations in backward: much less memory, slower "
                                           "steps.")

    @classmethod
    def from_recipe(cls, name: str, **overrides) -> "TeacherBuildConfig":
        """The settings of the named build recipe (TEACHER_RECIPES), with `overrides` on top of them."""
        if name not in TEACHER_RECIPES:
            raise TeacherBuildError(f"unknown teacher recipe {name!r}: the recipes are {', '.join(TEACHER_RECIPES)}")
        return cls(**{**TEACHER_RECIPES[name].settings, **overrides})

    def __post_init__(self):
        if self.lora_alpha is None:
            self.lora_alpha = 2 * self.lora_r  # as the original code sets it
        if self.dtype not in DTYPES:
            raise TeacherBuildError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        if not str(self.out_dir).strip():
            raise TeacherBuildError("out_dir is empty: name the build folder (--out)")
        counts = {"max_texts": self.max_texts, "mntp_steps": self.mntp_steps, "simcse_steps": self.simcse_steps,
                  "mntp_micro_batch": self.mntp_micro_batch}
        positive = {"mntp_batch_size": self.mntp_batch_size, "mntp_max_length": self.mntp_max_length,
                    "simcse_batch_size": self.simcse_batch_size, "simcse_max_length": self.simcse_max_length,
                    "lora_r": self.lora_r, "lora_alpha": self.lora_alpha, "save_every": self.save_every}
        for name, value in counts.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise TeacherBuildError(f"{name} must be an integer >= 0, got {value!r}")
        for name, value in positive.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise TeacherBuildError(f"{name} must be an integer >= 1, got {value!r}")
        if self.mntp_steps == 0 and self.simcse_steps == 0:
            raise TeacherBuildError("mntp_steps and simcse_steps are both 0: nothing would be trained")
        if self.mntp_max_length < 2:
            raise TeacherBuildError(f"mntp_max_length must be at least 2 (a token and the one before it), "
                                    f"got {self.mntp_max_length}")
        if self.simcse_batch_size < 2:
            raise TeacherBuildError(f"simcse_batch_size must be at least 2 (the other texts are the negatives), "
                                    f"got {self.simcse_batch_size}")
        if self.mntp_micro_batch > self.mntp_batch_size:
            raise TeacherBuildError(f"mntp_micro_batch ({self.mntp_micro_batch}) is larger than mntp_batch_size "
                                    f"({self.mntp_batch_size})")
        if not 0 < self.mask_rate < 1:
            raise TeacherBuildError(f"mask_rate must be between 0 and 1 (exclusive), got {self.mask_rate}")
        for name in ("simcse_dropout", "lora_dropout"):
            if not 0 <= getattr(self, name) < 1:
                raise TeacherBuildError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        for name in ("mntp_lr", "simcse_lr", "temperature", "clip_grad_norm"):
            if not getattr(self, name) > 0:
                raise TeacherBuildError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.texts != "sharegpt":
            from pathlib import Path

            path = Path(self.texts).expanduser()
            if path.is_dir():
                raise TeacherBuildError(f"texts {self.texts!r} is a folder; a file of texts (or 'sharegpt') is expected")
            if not path.is_file():
                raise TeacherBuildError(f"texts file not found: {self.texts}")
