"""The training recipe: every setting of `genembed train` and its default, in one place.

The defaults are the winner of the recipe experiments (`experiments/results/`); the CLI reads
them from here, so there is one source of truth. Light on purpose: no torch import.
"""
from __future__ import annotations

from dataclasses import dataclass

# the allowed values of the recipe's choices, checked when a TrainConfig is made (before any work)
CHOICES = {"align_loss": ("mse", "cosine"), "align_init": ("ridge", "random"),
           "recon_init": ("identity", "rms"), "recon_form": ("linear", "centered"),
           "prompt_frame": ("none", "chat"),
           "token_init": ("mean", "words", "prompt-end"), "target": ("response", "query+response"),
           "dtype": ("float32", "bfloat16", "float16")}
# settings that change how a run computes, not what it computes: a run may resume under other values
RESULT_NEUTRAL = ("gradient_checkpointing", "save_every", "query_lens")


@dataclass
class TrainConfig:
    responses: str  # JSONL of {"query", "response"} rows (from `genembed generate`)
    out_dir: str  # run folder: log, resume state, final checkpoint, plot
    backbone: str = "smollm2-135m-instruct"  # alias, .gguf, folder or hub id
    teacher: str = "all-minilm-l6-v2"  # sentence-transformers name/folder, or "self"
    # T (may be 0). 0, the official code's default, beat the paper's 10 at 600 steps on every task and
    # trains 12% faster (experiments/results/recipe.md, thought-0-600)
    num_thought_tokens: int = 0
    num_compression_tokens: int = 10  # C
    limit: int | None = None  # use only the first N response rows
    steps: int = 600  # optimiser steps (2 epochs of the default's 2,400 rows at batch 8)
    batch_size: int = 8  # examples per micro-batch
    grad_accum: int = 1  # micro-batches per optimiser step
    # the special tokens start at: "mean" token embedding, "words" (model.INIT_WORDS), "prompt-end" (the
    # chat prompt's last tokens, repeated)
    token_init: str = "mean"
    lr_tokens: float = 5e-2  # the special tokens need a large step to move at all in few steps
    lr_projections: float = 1e-3  # recon and align
    weight_decay: float = 0.0
    warmup_steps: int = 30  # linear warm-up, then linear decay to 0
    # the first N steps train on the alignment loss alone: no reconstruction pass, so they cost a
    # fraction of a full step (alignment first, then both losses)
    align_only_steps: int = 0
    # the reverse: the first N steps train on the reconstruction loss alone (alignment weight 0)
    rec_only_steps: int = 0
    # weight of the reconstruction cross-entropy. 0 (no reconstruction pass at all) since issue 15: at the full
    # budget alignment alone beat both losses on every task (Q→A 0.821 vs 0.793, cls 0.788 vs 0.781, clu 0.359
    # vs 0.339; experiments/results/decoding.md) in 40% of the time, and reconstruction did not make the
    # embedding decodable either. The paper's recipe is `w_rec = 1` (`--w-rec 1`).
    w_rec: float = 0.0
    # None: 4 x dim for "mse" (4 x the squared distance to the target; 1 x dim lost to 4 x dim on every
    # task in experiments/results/recipe.md), 1 for "cosine"
    w_align: float | None = None
    align_loss: str = "mse"  # "mse" (paper) or "cosine"
    align_init: str = "ridge"  # "ridge": least-squares fit of align on the initial states; "random"
    recon_init: str = "identity"  # "identity"; "rms": identity scaled so the soft prompt has the token embeddings' norm
    target: str = "response"  # "response" (paper); "query+response": normalise(t(query) + t(response)), a departure
    # "linear": soft prompt = recon(states), the paper's. "centered" (a departure): each compression position's
    # mean state over the training queries is removed, deviations are scaled to unit size, and the prompt is
    # prompt_base + recon(deviation), at the token embeddings' norm instead of the last layer's
    recon_form: str = "linear"
    # "none": the LLM reads the soft prompt alone before the response (the paper). "chat" (a departure): the soft
    # prompt sits in the chat template's user turn and the response follows the assistant header, in training
    # and in decoding
    prompt_frame: str = "none"
    # a hinge on reconstruction (a departure; the official code carries a contrastive term, off): each response
    # must be read `margin` nats per token better from its own soft prompt than from the next row's in the
    # batch. Costs a second reconstruction pass per step.
    w_margin: float = 0.0
    margin: float = 0.5
    ridge_examples: int = 512  # queries used for that fit
    max_query_tokens: int = 128  # queries are cut to this many tokens
    max_response_tokens: int = 64  # responses are cut to this many tokens
    instruction: str = "query"  # instruction name (or text) put before each training query
    bf16: bool = False  # bf16 autocast (CPU or GPU)
    # the frozen backbone's weights: "float32", or "bfloat16" / "float16" to hold a large backbone in half the
    # memory (an 8B backbone is 32 GB in float32); the trained tensors stay float32 either way
    dtype: str = "float32"
    # recompute the reconstruction pass layer by layer in backward and never hold the full logits:
    # a fraction of the training memory for one more forward of that pass (benchmarks/)
    gradient_checkpointing: bool = False
    seed: int = 0
    # after training, embed the training queries into the checkpoint's query lens (query_lens.py), the
    # default decoder; the checkpoint then holds those queries (cut to 96 tokens)
    query_lens: bool = True
    save_every: int = 50  # write resume/ every N steps
    clip_grad_norm: float = 1.0

    def __post_init__(self):
        for field in ("align_only_steps", "rec_only_steps"):
            if not 0 <= getattr(self, field) <= self.steps:
                raise ValueError(f"{field} must be between 0 and steps ({self.steps}), got {getattr(self, field)}")
        if self.align_only_steps and self.rec_only_steps:
            raise ValueError("align_only_steps and rec_only_steps are two orders of one schedule (which loss "
                             "trains alone first): set one of them, not both")
        for field, allowed in CHOICES.items():
            if getattr(self, field) not in allowed:
                raise ValueError(f"{field} must be one of {allowed}, got {getattr(self, field)!r}")

