"""The `self` teacher: the frozen backbone's own mean-pooled last-layer states, unit-normalised. No labelled
data anywhere (the raw baseline of the paper's self-supervised setting)."""
from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from ..backbone import Backbone
from ..inputs import pad, plain_ids


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
