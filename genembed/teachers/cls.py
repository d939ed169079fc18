"""A plain encoder read at its first (CLS) token, not normalised (`cls:PATH`): the BGE-M3-unsupervised kind of
teacher the paper's v2 trains with."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .folders import TeacherError, looks_local, read_json

CLS_PREFIX = "cls:"


class CLSTeacher:
    """A plain encoder (XLM-R / BERT style, e.g. BGE-M3-unsupervised) read at its first (CLS) token, not
    normalised: `cls:PATH`. A sentence-transformers folder must pool by CLS (1_Pooling/config.json)."""

    def __init__(self, spec: str, device: str = "cpu", dtype: str = "float32", max_length: int = 512):
        from transformers import AutoModel, AutoTokenizer

        self.name = spec
        where = spec[len(CLS_PREFIX):].strip()
        if not where:
            raise TeacherError(f"teacher {spec!r}: no encoder folder or hub id after {CLS_PREFIX!r}")
        path = Path(where).expanduser()
        if not path.is_dir() and looks_local(where):
            raise TeacherError(f"teacher {spec!r}: {where!r} is not a folder")
        if path.is_dir():
            pooling = path / "1_Pooling" / "config.json"
            if pooling.is_file():
                self._check_pooling(pooling)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(where)
            self.model = AutoModel.from_pretrained(where, dtype=getattr(torch, dtype))
        except Exception as error:
            raise TeacherError(f"teacher {spec!r}: encoder {where!r} cannot be loaded ({type(error).__name__})") from None
        self.model.eval().requires_grad_(False).to(device)
        self.device = torch.device(device)
        self.max_length = max_length
        self.dim = self.model.config.hidden_size
        self.cache_id = f"cls-{spec}-{max_length}-{dtype}"

    @staticmethod
    def _check_pooling(path: Path) -> None:
        data = read_json(path)
        modes = sorted(k[len("pooling_mode_"):] for k, v in data.items() if k.startswith("pooling_mode_") and v is True)
        if isinstance(data.get("pooling_mode"), str):
            modes = [data["pooling_mode"]]
        if modes == ["cls_token"] or modes == ["cls"]:
            return
        if not modes:
            raise TeacherError(f"{path}: names no pooling mode, so the encoder's pooling is unknown")
        raise TeacherError(f"{path}: pools by {', '.join(modes)}, not by the CLS token the cls: teacher reads")

    @torch.no_grad()
    def embed(self, texts: list[str], batch_size: int = 32, show_progress_bar: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in tqdm(range(0, len(texts), batch_size), desc="cls teacher", disable=not show_progress_bar):
            batch = self.tokenizer(list(texts[start:start + batch_size]), return_tensors="pt", padding=True,
                                   truncation=True, max_length=self.max_length).to(self.device)
            states = self.model(**batch).last_hidden_state
            out[start:start + len(batch["input_ids"])] = states[:, 0].float().cpu().numpy()
        return out
