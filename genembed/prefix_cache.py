"""The prompt head every input shares, run once and reused.

Every encoder input starts with the same tokens: the chat template's opening (for SmolLM2 a
system prompt of 24 tokens) and the instruction (10 more for the query instruction): about a
quarter of an average input. Under causal attention their keys/values do not depend on what
follows, and positions come from the attention mask, so every row sees them at positions
0..L-1 — the same keys/values for every row. They are computed once (batch of one), kept, and
expanded to the batch; only the rest of each row runs through the model.

A batch's rows are left-padded, so dropping the head leaves each row's padding between the head
and its text: the mask hides it, and positions (mask cumsum) still count the head.
"""
from __future__ import annotations

import copy
from collections import OrderedDict

import torch

MAX_ENTRIES = 8  # distinct heads kept (instructions × precisions); a few hundred KB each for 135M


def _heads(ids: torch.Tensor, mask: torch.Tensor, width: int) -> torch.Tensor:
    """The first `width` real tokens of each left-padded row, [B, width]."""
    start = ids.shape[1] - mask.sum(1)
    index = start.unsqueeze(1) + torch.arange(width, device=ids.device).unsqueeze(0)
    return ids.gather(1, index)


def drop_head(ids: torch.Tensor, mask: torch.Tensor, length: int, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded rows without their first `length` real tokens, one `length` narrower."""
    start = ids.shape[1] - mask.sum(1)
    keep = torch.arange(ids.shape[1] - length, device=ids.device).unsqueeze(0) >= start.unsqueeze(1)
    rest_mask = mask[:, length:] * keep
    return ids[:, length:].masked_fill(rest_mask == 0, pad_id), rest_mask


class SharedPrefixCache:
    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.entries: OrderedDict[tuple, object] = OrderedDict()

    def clear(self) -> None:
        self.entries.clear()

    @torch.no_grad()
    def find(self, base, ids: torch.Tensor, mask: torch.Tensor, cache_kw: str):
        """(length L, a KV cache of the shared head expanded to the batch) or (0, None).

        A kept head is used if every row starts with it; otherwise, for a batch of two or more,
        the rows' common head is computed and kept. At least one token of the shortest row is
        left to run, so there is always something after the head."""
        room = int(mask.sum(1).min()) - 1
        if not self.enabled or room < 1:
            return 0, None
        heads = _heads(ids, mask, room)
        precision = (torch.is_autocast_enabled(ids.device.type), torch.get_autocast_dtype(ids.device.type),
                     str(ids.device))
        for key in reversed(self.entries):  # most recently used first
            head, kv_precision = key[0], key[1:]
            if kv_precision == precision and len(head) <= room and \
                    bool((heads[:, : len(head)] == torch.tensor(head, device=ids.device)).all()):
                self.entries.move_to_end(key)
                return len(head), self._expanded(self.entries[key], ids.shape[0])
        if ids.shape[0] < 2:
            return 0, None
        agree = (heads == heads[:1]).all(0)
        length = int(agree.long().cumprod(0).sum())
        if length == 0:
            return 0, None
        head = heads[0, :length]
        out = base(input_ids=head.unsqueeze(0), attention_mask=torch.ones_like(head).unsqueeze(0),
                   position_ids=torch.arange(length, device=ids.device).unsqueeze(0), use_cache=True)
        kv = getattr(out, cache_kw)
        key = (tuple(head.tolist()), *precision)
        self.entries[key] = kv
        while len(self.entries) > MAX_ENTRIES:
            self.entries.popitem(last=False)
        return length, self._expanded(kv, ids.shape[0])

    @staticmethod
    def _expanded(kv, batch: int):
        """A fresh copy for one batch (the model appends to the cache it is given)."""
        fresh = copy.deepcopy(kv)
        fresh.batch_repeat_interleave(batch)
        return fresh
