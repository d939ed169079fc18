"""The query lens: read an embedding through the training query nearest it (a departure from the paper).

The word lens (word_lens.py) names an embedding's topic but not its task: single words cannot say
"write five emails" or "fix this function". Training already placed every training query's
embedding where the teacher puts its answer, so the training queries form a bank of whole requests
in the embedding space. An embedding decodes through the bank's nearest query, followed by the
embedding's own nearest words (which make the request specific to this input when two inputs
share a neighbour); the frozen LLM answers that request, and its answer is the decoded text.

Only the unlabeled queries training read go into the bank; it is saved beside the trained tensors
(query-lens.safetensors: the queries, cut, and their unit vectors in float16). A model trained
on private queries carries them in this file: `genembed train --no-query-lens` leaves it out.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

FILE = "query-lens.safetensors"
QUERY_TOKENS = 96  # a bank query is cut to this many tokens: the request stays short, the task stays in
ABOUT = "{query}\n(About: {words}.)"  # the request: the neighbour, then this embedding's nearest words


class QueryLens:
    """A bank of training queries and their unit embeddings; the request an embedding decodes through."""

    def __init__(self, queries: list[str], vectors: np.ndarray):
        if not queries or len(queries) != len(vectors):
            raise ValueError(f"the query lens needs one vector per query; got {len(queries)} queries, "
                             f"{len(vectors)} vectors")
        self.queries, self.vectors = queries, np.asarray(vectors, dtype=np.float32)

    @classmethod
    def build(cls, model, queries: list[str], batch_size: int = 32, show_progress_bar: bool | None = None,
              bf16: bool = False) -> "QueryLens":
        """Embed `queries` (cut to QUERY_TOKENS tokens, duplicates dropped) with `model`, as training did."""
        tok = model.backbone.tokenizer
        cut = [tok.decode(tok(q, add_special_tokens=False).input_ids[:QUERY_TOKENS]).strip() for q in queries]
        cut = list(dict.fromkeys(q for q in cut if q))
        if not cut:
            raise ValueError("the query lens needs at least one non-empty query")
        vectors = model.encode(cut, instruction=model.config.default_instruction, batch_size=batch_size,
                               show_progress_bar=show_progress_bar, normalize=True, bf16=bf16)
        return cls(cut, vectors)

    def write(self, path) -> None:
        """The bank as one safetensors file: vectors in float16, the queries in its metadata."""
        import torch
        from safetensors.torch import save_file

        tensors = {"vectors": torch.from_numpy(self.vectors.astype(np.float16))}
        save_file(tensors, str(path), metadata={"queries": json.dumps(self.queries)})

    @classmethod
    def load(cls, folder) -> "QueryLens | None":
        """The lens saved in a checkpoint folder, or None where it has none."""
        from safetensors import safe_open

        path = Path(folder) / FILE
        if not path.exists():
            return None
        with safe_open(str(path), framework="np") as f:
            return cls(json.loads(f.metadata()["queries"]), f.get_tensor("vectors"))

    def nearest(self, embeddings: np.ndarray, k: int = 1) -> list[list[tuple[str, float]]]:
        """For each embedding (row), its k nearest bank queries and their cosine, nearest first."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        e = np.asarray(embeddings, dtype=np.float32)
        e = e / np.linalg.norm(e, axis=1, keepdims=True).clip(min=1e-12)
        sims = e @ self.vectors.T
        top = np.argsort(-sims, axis=1)[:, :k]
        return [[(self.queries[j], float(row[j])) for j in idx] for row, idx in zip(sims, top)]

    def requests(self, embeddings: np.ndarray, words: list[list[tuple[str, float]]]) -> list[str]:
        """The user's turn each embedding decodes through: its nearest query, then its nearest words."""
        return [ABOUT.format(query=near[0][0], words=", ".join(w for w, _ in ws))
                for near, ws in zip(self.nearest(embeddings), words)]
