"""The training recipe: every setting of `genembed train`, its default and its help, in one place.

The defaults are the winner of the recipe experiments (`experiments/results/`, docs/training.md).
`genembed train` builds its options from these fields (flag and help from each field's metadata),
so a setting is written once. Settings that lost their screens were removed (REMOVED below: a saved
run or checkpoint that used one is refused by name). Light on purpose: no torch import.
"""
from __future__ import annotations

from dataclasses import dataclass, field

DTYPES = ("float32", "bfloat16", "float16")
TARGETS = ("response", "query+response", "query")
# settings that change how a run computes, not what it computes: a run may resume under other values
RESULT_NEUTRAL = ("gradient_checkpointing", "save_every", "query_lens")
# settings removed after losing their screens (issue 24: docs/training.md, docs/decoding.md; issue 27:
# docs/broad-benchmark.md; each result with the command that made it, runnable at commit LAST_COMMIT or
# REMOVED_AT[name]), and the value every run now has. A run or
# checkpoint that recorded another value is refused by name.
LAST_COMMIT = "9098b17"
REMOVED = {"align_loss": "mse", "align_init": "ridge", "recon_init": "identity", "recon_form": "linear",
           "prompt_frame": "none", "token_init": "mean", "w_margin": 0.0, "margin": 0.5,
           "align_only_steps": 0,
           # issue 27, stop 47: the bank contrast (--w-contrast) lost its selection-set screen (0.721 against 0.731)
           "w_contrast": 0.0}
# where a setting removed later than LAST_COMMIT last ran
REMOVED_AT = {"w_contrast": "193393f"}


def removed_setting_error(name: str, value, where: str) -> str | None:
    """The refusal for a removed setting recorded with a value other than today's, else None."""
    if name not in REMOVED or value == REMOVED[name]:
        return None
    commit = REMOVED_AT.get(name, LAST_COMMIT)
    return (f"{where} uses {name}={value!r}, a setting genembed no longer has (it lost its screen; only "
            f"{REMOVED[name]!r} remains). It ran up to commit {commit}: `git checkout {commit}` to use it")


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
    # 0, the official code's default, beat the paper's 10 at 600 steps on every task and trains 12% faster
    # (experiments/results/recipe.md, thought-0-600)
    num_thought_tokens: int = setting(0, "T thought tokens (may be 0; the paper: 10).", "--thought-tokens")
    num_compression_tokens: int = setting(10, "C compression tokens.", "--compression-tokens")
    limit: int | None = setting(None, "Use only the first N response rows.")
    steps: int = setting(600, "Optimiser steps (2 epochs of the default's 2,400 rows at batch 8).")
    batch_size: int = setting(8, "Examples per micro-batch (the global batch under a launcher).")
    grad_accum: int = setting(1, "Micro-batches per optimiser step.")
    lr_tokens: float = setting(5e-2, "Learning rate of the special tokens (they need a large step to move in "
                               "few steps).")
    lr_projections: float = setting(1e-3, "Learning rate of recon and align.")
    weight_decay: float = setting(0.0, "AdamW weight decay.")
    warmup_steps: int = setting(30, "Linear warm-up steps, then linear decay to 0.")
    rec_only_steps: int = setting(0, "The first N steps train on the reconstruction loss alone (alignment "
                                  "weight 0); needs --w-rec above 0.")
    # 0 (no reconstruction pass at all) since issue 15: at the full budget alignment alone beat both losses on
    # every task (Q→A 0.821 vs 0.793, cls 0.788 vs 0.781, clu 0.359 vs 0.339; experiments/results/decoding.md)
    # in 40% of the time, and reconstruction did not make the embedding decodable either
    w_rec: float = setting(0.0, "Weight of the reconstruction cross-entropy (0: alignment alone, the default; "
                           "the paper's recipe: 1).")
    # removed in issue 24 after a 150-step screen on 4 tasks; back (issue 27) for the broad benchmark's selection
    # set, where averaging the student with its teacher on the input beat the student alone (docs/broad-benchmark.md)
    target: str = setting("response", "Alignment target: 'response' (the paper's: the teacher's embedding of the "
                          "answer), 'query+response' (the unit mean of the teacher's embeddings of the query and "
                          "of the answer: anchored on the input, as HyDE averages the two) or 'query' (the "
                          "teacher's embedding of the input itself: plain distillation, the control that shows how "
                          "near the student can come to its teacher on the input).")
    # issue 27: retrieval and reranking embed their documents under the "document" instruction, a side of the
    # student no training row ever showed it
    documents: bool = setting(False, "Also train on each response as a document: the response under the 'document' "
                              "instruction, aligned to the teacher's embedding of that response (twice the rows, no "
                              "more answering; reconstruction, if on, rebuilds the response).")
    # None: 4 x dim (4 x the squared distance to the target; 1 x dim lost to 4 x dim on every task in
    # experiments/results/recipe.md)
    w_align: float | None = setting(None, "Weight of the alignment MSE (default: 4 x the teacher's dimension).")
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
        if self.input_layout not in ("chat", "official"):
            raise ValueError(f"input_layout must be 'chat' or 'official', got {self.input_layout!r}")
        if self.target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {self.target!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        if not 0 <= self.rec_only_steps <= self.steps:
            raise ValueError(f"rec_only_steps must be between 0 and steps ({self.steps}), got {self.rec_only_steps}")
        # combinations in which a loss (or an option) does nothing are refused, never run silently
        if self.w_rec == 0 and self.rec_only_steps:
            raise ValueError(f"rec_only_steps={self.rec_only_steps} with w_rec=0: those steps would train on a loss "
                             f"of exactly zero (no reconstruction, alignment weight 0). Set --w-rec above 0 (the "
                             f"paper's recipe: 1) or leave --rec-only-steps out")
        if self.w_rec == 0 and self.gradient_checkpointing:
            raise ValueError("gradient_checkpointing with w_rec=0: it only recomputes the reconstruction pass, which "
                             "a run without reconstruction never makes. Leave it out, or set --w-rec above 0")
        if self.w_rec == 0 and self.w_align == 0:
            raise ValueError("w_rec=0 and w_align=0: no loss trains anything")
        if self.w_rec < 0 or (self.w_align is not None and self.w_align < 0):
            raise ValueError(f"loss weights must be >= 0, got w_rec={self.w_rec}, w_align={self.w_align}")

    def alignment_weight(self, dim: int) -> float:
        """The alignment loss's weight: w_align, or by default 4 x dim."""
        return 4.0 * dim if self.w_align is None else self.w_align
