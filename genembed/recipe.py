"""The training recipe: every setting of `genembed train`, its default and its help, in one place,
and the named recipes (`genembed train --recipe NAME`, `TrainConfig.from_recipe(NAME)`).

`genembed train` builds its options from these fields (flag and help from each field's metadata), so a
setting is written once. The field defaults are the `default` recipe: what the bundled default
checkpoint (genembed/default/) was trained with, recorded in genembed/default/train-config.json. The
evidence behind each default is in the recipe comparisons (docs/training.md); settings that lost those
comparisons were removed, and a run or checkpoint that records a setting this schema does not know is
refused by name. Light on purpose: no torch import.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from .errors import InputError

DTYPES = ("float32", "bfloat16", "float16")
TARGETS = ("response", "query+response", "query")
# settings that change how a run computes, not what it computes: a run may resume under other values
RESULT_NEUTRAL = ("gradient_checkpointing", "save_every", "query_lens")


@dataclass(frozen=True)
class Recipe:
    """A named recipe: a one-line description and the settings it overrides on TrainConfig's defaults."""
    description: str
    settings: Mapping[str, object]


def _recipe(description: str, **settings) -> Recipe:
    return Recipe(description, MappingProxyType(settings))


RECIPES: Mapping[str, Recipe] = MappingProxyType({
    # the field defaults themselves: tests/test_bundled_recipes.py holds them to genembed/default/train-config.json
    "default": _recipe("the bundled default's: alignment alone to MiniLM toward the unit mean of its embeddings of "
                       "the query and of the answer, 1,200 steps of batch 8"),
    # genembed/self-supervised/train-config.json. The teacher is the paper's kind, an LLM2Vec copy of the backbone
    # (bundled: scripts/train_self_supervised.sh builds it). Kept from the screens (lab/reports/broad-benchmark.md):
    # document rows (0.642 against 0.624 without, raw mean-pool teacher); the response target (0.621 against the
    # mixed target's 0.612 there, 0.677 against 0.661 over the LLM2Vec teacher); unit targets (0.673 against raw
    # targets' 0.641 over the LLM2Vec teacher); 600 steps on the first 2,400 rows, each seen once with its document row
    # (0.686 against 300 steps on the first 1,200's 0.677, classification 0.815 against 0.787); both losses, as the
    # paper trains (0.683 against alignment alone's 0.686, a tie within the 0.01 band written before the run, with
    # classification 0.829 against 0.815, the type the student trailed its teacher on; each step costs about twice).
    # scripts/answer_queries.sh writes the rows in the split's order, so they are the split's first 2,400 queries
    "self-supervised": _recipe("the bundled self-supervised checkpoint's: no labelled data anywhere; the teacher is "
                               "the LLM2Vec teacher built from the backbone on unlabeled text (smollm2-135m-llm2vec), "
                               "reconstruction plus alignment toward its embedding of the answer, with document "
                               "rows, 600 steps on the first 2,400 answered queries",
                               teacher="smollm2-135m-llm2vec", target="response", documents=True, w_rec=1.0,
                               steps=600, limit=2400),
    # the paper's recipe as the official llm2vec-gen code configures it (its conf/ and train_scripts/, and the
    # training command of its README); not run by genembed at this scale. Settings it leaves out are the field
    # defaults: 0 thought + 10 compression tokens (`special_tokens=total_10` read out by `last_10_tokens`, the
    # README's command; the conf/config.yaml default, total_20, adds 10 thought tokens), AdamW without weight
    # decay, gradient norm clipped at 1 (the Hugging Face Trainer's defaults)
    "paper": _recipe("the LLM2Vec-Gen paper's: reconstruction plus alignment at its batch 32, 5,000 steps and one "
                     "learning rate of 3e-4, the backbone its own teacher (a GPU recipe)",
                     # the official teacher is an LLM2Vec (bidirectional, MNTP- and SimCSE-trained) copy of the same
                     # backbone (conf/model/*.yaml): pass it with --teacher (published for a few backbones, e.g.
                     # McGill-NLP/LLM2Vec-Qwen3-8B-mntp+...-mntp-unsup-simcse; `genembed teacher build` makes one for
                     # any other); the backbone's own mean-pooled states are the stand-in that needs nothing built
                     teacher="self",
                     target="response",  # the teacher's embedding of the answer (the paper's alignment target)
                     w_rec=1.0,  # recon_loss_weight 1.0 (conf/training/llm2vec-gen.yaml)
                     # align_loss_weight 1.0 there weighs an MSE against un-normalised teacher states; genembed's
                     # targets are unit-norm, so w_align stays the default 4 x dim (which beat 1 x dim with both
                     # losses on every task in the recipe comparisons)
                     steps=5000,  # stop_after_steps (conf/training/llm2vec-gen.yaml)
                     warmup_steps=100,  # warmup_steps, linear decay (conf/training/default.yaml)
                     batch_size=32,  # per_device_train_batch_size (train_scripts/train_main.sh, the README's command)
                     # one learning rate for every trained tensor: 3e-4 for Qwen3, the published models'
                     # backbone (train_main.sh; 5e-4 for its other families)
                     lr_tokens=3e-4, lr_projections=3e-4,
                     # max_input_length 512 (conf/model/default.yaml): its collator cuts question and answer alike
                     max_query_tokens=512, max_response_tokens=512),
})


def setting(default, help: str, flag: str | tuple | None = None):
    """A dataclass field with the help (and, where it differs from --field-name, the flag) of its option;
    default=... makes it required."""
    metadata = {"help": help, **({"flag": flag} if flag else {})}
    return field(metadata=metadata) if default is ... else field(default=default, metadata=metadata)


@dataclass
class TrainConfig:
    responses: str = setting(..., "JSONL of {query, response} rows (from `genembed generate`).",
                             ("--responses", "-r"))
    out_dir: str = setting(..., "Run folder: log, resume state, model/, losses.png.", ("--out", "-o"))
    backbone: str = setting("smollm2-135m-instruct", "Alias, .gguf file, folder or hub id.")
    teacher: str = setting("all-minilm-l6-v2", "sentence-transformers name/folder, or 'self' (the backbone's "
                           "mean-pooled states of the response: no labelled data anywhere).")
    # 0 beat the paper's 10 at 600 steps on every task and trains 12% faster (the recipe comparisons)
    num_thought_tokens: int = setting(0, "T thought tokens (may be 0; the paper: 10).", "--thought-tokens")
    num_compression_tokens: int = setting(10, "C compression tokens.", "--compression-tokens")
    limit: int | None = setting(None, "Use only the first N response rows (scripts/answer_queries.sh writes them in "
                                      "the ShareGPT split's order).")
    # 1,200 beat 600 on the broad benchmark's selection set: 0.704 against 0.692, ahead on five of six task types
    steps: int = setting(1200, "Optimiser steps (4 epochs of the bundled default's 2,400 rows at batch 8).")
    batch_size: int = setting(8, "Examples per micro-batch (the global batch under a launcher).")
    grad_accum: int = setting(1, "Micro-batches per optimiser step.")
    lr_tokens: float = setting(5e-2, "Learning rate of the special tokens (they need a large step to move in "
                               "few steps).")
    lr_projections: float = setting(1e-3, "Learning rate of recon and align.")
    weight_decay: float = setting(0.0, "AdamW weight decay.")
    warmup_steps: int | None = setting(None, "Linear warm-up steps, then linear decay to 0 (default: 5% of the "
                                       "steps).")
    rec_only_steps: int = setting(0, "The first N steps train on the reconstruction loss alone (alignment "
                                  "weight 0); needs --w-rec above 0.")
    # 0 (no reconstruction pass at all): at 600 steps alignment alone beat both losses on every task (Q→A 0.821
    # against 0.793, classification 0.788 against 0.781, clustering 0.359 against 0.339) in 40% of the time,
    # and reconstruction did not make the embedding decodable either
    w_rec: float = setting(0.0, "Weight of the reconstruction cross-entropy (0: alignment alone, the default; "
                           "the paper's recipe: 1).")
    # query+response won the broad benchmark's selection set against the response alone at 600 steps (0.709
    # against 0.695) and at 1,200 (0.731 against 0.705); the query alone (plain distillation) scored 0.719 at
    # 600 and 0.724 at 1,200, but stays under the teacher it copies and drops what the method embeds, the answer
    target: str = setting("query+response", "Alignment target: 'response' (the paper's: the teacher's embedding of "
                          "the answer), 'query+response' (the unit mean of the teacher's embeddings of the query and "
                          "of the answer: anchored on the input, as HyDE averages the two) or 'query' (the "
                          "teacher's embedding of the input itself: plain distillation, the control that shows how "
                          "near the student can come to its teacher on the input).")
    # retrieval and reranking embed their documents under the "document" instruction, a side of the student no
    # query row shows it. Off by default: with the default's recipe it scored 0.714 against 0.731 on the selection
    # set (STS -0.052, reranking -0.032); the self-supervised recipe turns it on
    documents: bool = setting(False, "Also train on each response as a document: the response under the 'document' "
                              "instruction, aligned to the teacher's embedding of that response (twice the rows, no "
                              "more answering; reconstruction, if on, rebuilds the response).")
    # None: 4 x dim (4 x the squared distance to the target; 1 x dim lost to 4 x dim on every task in the recipe
    # comparisons)
    w_align: float | None = setting(None, "Weight of the alignment MSE (default: 4 x the teacher's dimension).")
    # a sentence-transformers teacher and `self` give unit vectors already; an LLM2Vec or cls teacher gives raw
    # states, which the official trainer aligns to as they are (with align_loss_weight 1). Over the SmolLM2 LLM2Vec
    # teacher unit targets won on the selection set: 0.673 against raw targets' 0.641 with weight 1
    unit_targets: bool = setting(True, "Align to the teacher's embeddings scaled to unit length (--no-unit-targets: "
                                 "as the teacher gives them, e.g. an LLM2Vec teacher's raw pooled states, as the "
                                 "official trainer does; then choose --w-align to fit their scale).")
    ridge_examples: int = setting(512, "Queries on which align starts as the least-squares fit from the initial "
                                  "soft prompt to the targets.")
    max_query_tokens: int = setting(128, "Queries are cut to this many tokens.")
    max_response_tokens: int = setting(64, "Responses are cut to this many tokens (reconstruction only).")
    instruction: str = setting("query", "Instruction name (or text) put before each training query.")
    input_layout: str = setting("chat", "How a text becomes ids: 'chat' (genembed's: the text as the user turn of the "
                                "chat template), or 'official' (llm2vec-gen's: instruction + text as one string, no "
                                "template, the reconstruction targets as its collator makes them), for a model "
                                "`genembed export --format llm2vec-gen` can publish. In the official layout "
                                "--max-query-tokens counts every token of the row, special tokens included.")
    bf16: bool = setting(False, "bf16 autocast (CPU or GPU).")
    dtype: str = setting("float32", "The frozen backbone's weights: float32, bfloat16 or float16 (an 8B backbone "
                         "is 32 GB in float32; the trained tensors stay float32).")
    gradient_checkpointing: bool = setting(False, "Recompute the reconstruction pass in backward: much less "
                                           "memory, slower steps (needs --w-rec above 0).")
    seed: int = setting(0, "Seed of the initialisation and the data order.")
    query_lens: bool = setting(True, "After training, embed the training queries into the checkpoint's query "
                               "lens (the default decoder; the checkpoint then holds them, cut to 96 tokens).")
    save_every: int = setting(50, "Write resume/ every N steps.")
    clip_grad_norm: float = setting(1.0, "Gradient norm clipping.")

    def __post_init__(self):
        if self.warmup_steps is None:  # 5%: 60 of the default's 1,200 steps, 30 of the self-supervised 600
            self.warmup_steps = self.steps // 20
        if self.input_layout not in ("chat", "official"):
            raise InputError(f"input_layout must be 'chat' or 'official', got {self.input_layout!r}")
        if self.target not in TARGETS:
            raise InputError(f"target must be one of {TARGETS}, got {self.target!r}")
        if self.dtype not in DTYPES:
            raise InputError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        if not 0 <= self.rec_only_steps <= self.steps:
            raise InputError(f"rec_only_steps must be between 0 and steps ({self.steps}), got {self.rec_only_steps}")
        # combinations in which a loss (or an option) does nothing are refused, never run silently
        if self.w_rec == 0 and self.rec_only_steps:
            raise InputError(f"rec_only_steps={self.rec_only_steps} with w_rec=0: those steps would train on a loss "
                             f"of exactly zero (no reconstruction, alignment weight 0). Set --w-rec above 0 (the "
                             f"paper's recipe: 1) or leave --rec-only-steps out")
        if self.w_rec == 0 and self.gradient_checkpointing:
            raise InputError("gradient_checkpointing with w_rec=0: it only recomputes the reconstruction pass, which "
                             "a run without reconstruction never makes. Leave it out, or set --w-rec above 0")
        if self.w_rec == 0 and self.w_align == 0:
            raise InputError("w_rec=0 and w_align=0: no loss trains anything")
        if self.w_rec < 0 or (self.w_align is not None and self.w_align < 0):
            raise InputError(f"loss weights must be >= 0, got w_rec={self.w_rec}, w_align={self.w_align}")

    def alignment_weight(self, dim: int) -> float:
        """The alignment loss's weight: w_align, or by default 4 x dim."""
        return 4.0 * dim if self.w_align is None else self.w_align

    @classmethod
    def from_recipe(cls, name: str, **overrides) -> "TrainConfig":
        """The settings of the named recipe (RECIPES), with `overrides` on top of them."""
        if name not in RECIPES:
            raise InputError(f"unknown recipe {name!r}: the recipes are {', '.join(RECIPES)}")
        return cls(**{**RECIPES[name].settings, **overrides})
