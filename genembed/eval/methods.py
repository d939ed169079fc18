"""Every method the evaluation compares, behind one call: encode(texts, instruction, side).

side: "query" or "document" for retrieval, "text" for classification / clustering. Only the
methods that read instructions use them (the student; HyDE's generation prompt); input-centric
baselines embed the text itself. Every method that runs the backbone runs it the same way: in
bf16 autocast or not (bf16=, the same for all of one evaluation), texts cut to the same number
of tokens as the student's (MAX_TEXT_TOKENS).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from ..backbone import load_backbone
from ..checkpoint import model_fingerprint
from ..errors import InputError
from ..generate import answer_queries, read_responses
from ..ridge import ridge_fit
from ..teachers import SelfTeacher, cached_targets
from ..vectors import unit_mean
from .decoding import score_backbone_reference, score_student

MAX_TEXT_TOKENS = 128  # the default student's max_text_tokens


class Student:
    """A genembed checkpoint: the embedding of the LLM's potential response."""

    def __init__(self, model, name: str, bf16: bool = True):
        self.model, self.name, self.bf16 = model, name, bf16

    def identity(self) -> dict:
        """What its scores depend on (a stored score made otherwise is stale): the weights, how they run."""
        return {"model": model_fingerprint(self.model), "backend": self.model.backend, "bf16": self.bf16}

    def encode(self, texts, instruction: str, side: str) -> np.ndarray:
        return self.model.encode(texts, instruction=instruction, batch_size=16, bf16=self.bf16)

    def decoding(self, task) -> dict:
        return score_student(self.model, task, bf16=self.bf16)


def memo_encode(method, texts: list[str], instruction: str, side: str) -> np.ndarray:
    """method.encode, each distinct (instruction, side, text) encoded once per method object in a
    process: tasks from one source share texts, and a fused method reuses its parts' embeddings."""
    memo = method.__dict__.setdefault("_encode_memo", {})
    todo = [t for t in dict.fromkeys(texts) if (instruction, side, t) not in memo]
    if todo:
        for t, e in zip(todo, np.asarray(method.encode(todo, instruction, side))):
            memo[instruction, side, t] = e
    return np.stack([memo[instruction, side, t] for t in texts])


class FusedWithInput:
    """A student's embedding averaged with its own teacher's embedding of the input itself.

    The student is trained to predict its teacher's embedding of the LLM's response, so both vectors
    live in one space; their mean (of unit vectors, weights fixed at 1/2 before any score was seen)
    holds what the text says and what an answer to it would say. HyDE's paper averages the query's
    own vector with its hypothetical documents' the same way; here the hypothetical document's vector
    is the student's one-pass prediction. It costs one teacher pass on top of the student's."""

    def __init__(self, student: Student, on_input):
        self.student, self.on_input = student, on_input
        self.name = f"{student.name} + {on_input.name}"

    def identity(self) -> dict:
        return {"student": self.student.identity(), "input": self.on_input.identity()}

    def encode(self, texts, instruction: str, side: str) -> np.ndarray:
        texts = list(texts)
        a = memo_encode(self.student, texts, instruction, side)
        b = memo_encode(self.on_input, texts, instruction, side)
        if a.shape[-1] != b.shape[-1]:
            raise InputError(f"{self.student.name} embeds in {a.shape[-1]} dimensions and {self.on_input.name} in "
                             f"{b.shape[-1]}: only a student and its own teacher share a space")
        return unit_mean(a, b)


class TeacherOnInput:
    """The teacher (any genembed.teachers.load_teacher gives) embeds the query / text itself (input-centric)."""

    def __init__(self, teacher):
        self.teacher, self.name = teacher, f"teacher on input ({teacher.name})"

    def identity(self) -> dict:  # (an LLM2Vec teacher's cache_id holds its adapters' digest: a rebuilt one is new)
        return {"teacher": getattr(self.teacher, "cache_id", self.teacher.name)}

    def encode(self, texts, instruction: str, side: str) -> np.ndarray:
        return self.teacher.embed(texts)


class BackboneMeanPool:
    """Mean-pooled last-layer states of the frozen backbone over the text (input-centric)."""

    def __init__(self, backbone_name: str, bf16: bool = True):
        self.pool = SelfTeacher(load_backbone(backbone_name), max_tokens=MAX_TEXT_TOKENS, bf16=bf16)
        self.name, self.backbone_name, self.bf16 = "backbone mean-pool", backbone_name, bf16

    def identity(self) -> dict:
        return {"backbone": self.backbone_name, "bf16": self.bf16}

    def encode(self, texts, instruction: str, side: str) -> np.ndarray:
        return self.pool.embed(texts)


class HyDE:
    """The backbone writes a response (greedy); the teacher embeds that response. Documents are
    embedded by the teacher directly. Generations are cached on disk (resumable). `tasks` limits
    it to some tasks: generating for every text costs far more than encoding on a CPU."""

    query_tasks_only = True  # the broad benchmark: it answers queries, so only query → document tasks

    def __init__(self, backbone_name: str, teacher, cache_dir: str | Path,
                 max_new_tokens: int = 64, use_cache: bool = True, tasks: set[str] | None = None, bf16: bool = True):
        self.backbone, self.teacher, self.tasks, self.bf16 = load_backbone(backbone_name), teacher, tasks, bf16
        self.cache_dir, self.max_new_tokens, self.use_cache = Path(cache_dir), max_new_tokens, use_cache
        self.name, self.backbone_name = "HyDE (backbone answers, teacher embeds)", backbone_name

    def identity(self) -> dict:
        return {"backbone": self.backbone_name, "teacher": self.teacher.name, "max_new_tokens": self.max_new_tokens,
                "bf16": self.bf16}

    def responses(self, prompts: list[str]) -> list[str]:
        ids = [hashlib.sha1(p.encode("utf-8")).hexdigest() for p in prompts]
        unique = list(dict(zip(ids, prompts)).items())
        path = self.cache_dir / f"hyde-{self.max_new_tokens}{'' if self.bf16 else '-fp32'}.jsonl"
        if not self.use_cache:
            path = self.cache_dir / f"hyde-uncached-{hashlib.sha1(''.join(ids).encode()).hexdigest()[:12]}.jsonl"
            path.unlink(missing_ok=True)
        rows = answer_queries(self.backbone, unique, path, max_new_tokens=self.max_new_tokens, batch_size=16,
                              max_query_tokens=MAX_TEXT_TOKENS, bf16=self.bf16, show_progress_bar=len(unique) > 16)
        answer = {r["id"]: r["response"] for r in rows}
        if not self.use_cache:
            path.unlink(missing_ok=True)
        return [answer[i] for i in ids]

    def decoding(self, task) -> dict:
        """The decoding task's reference: the backbone reads the real query (see decoding.py)."""
        return score_backbone_reference(self.backbone, self.teacher, task, bf16=self.bf16)

    def encode(self, texts, instruction: str, side: str) -> np.ndarray:
        if side == "document":
            return self.teacher.embed(texts)
        return self.teacher.embed(self.responses([instruction + t for t in texts]))


class RidgeOnMeanPool:
    """Input-centric least squares: backbone mean-pooled states of a query → the teacher's
    embedding of its response, fitted on the student's own training rows (same queries, same
    targets), then applied to any text."""

    def __init__(self, backbone_name: str, teacher, responses: str | Path, cache_dir: str | Path,
                 limit: int | None = None, shrinkage: float = 0.1, bf16: bool = True):
        rows = read_responses(responses)[:limit]  # the rows training uses, read by the same rule
        if not rows:
            raise InputError(f"{responses} holds no (query, response) rows to fit the ridge baseline on")
        self.pool = SelfTeacher(load_backbone(backbone_name), max_tokens=MAX_TEXT_TOKENS, bf16=bf16)
        targets = cached_targets(teacher, [r["response"] for r in rows], cache_dir, show_progress_bar=False)
        features = cached_targets(self.pool, [r["query"] for r in rows], cache_dir)
        w, b, self.r2 = ridge_fit(torch.as_tensor(features), torch.as_tensor(targets), shrinkage)
        self.w, self.b = w.float().numpy(), b.float().numpy()
        self.name = f"ridge: mean-pool → teacher(response), {len(rows)} train queries"
        self.backbone_name, self.teacher_name, self.bf16 = backbone_name, teacher.name, bf16

    def identity(self) -> dict:
        return {"backbone": self.backbone_name, "teacher": self.teacher_name,
                "fit": hashlib.sha1(self.w.tobytes()).hexdigest(), "bf16": self.bf16}

    def encode(self, texts, instruction: str, side: str) -> np.ndarray:
        return self.pool.embed(texts) @ self.w + self.b
