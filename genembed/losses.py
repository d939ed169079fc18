"""The two losses of LLM2Vec-Gen.

reconstruction: the frozen LLM reads only the soft prompt, then the response; cross-entropy of
    each response token given everything before it. The LM head runs on response positions
    only (not on the soft prompt or padding), which saves most of the vocabulary projection.
alignment: the embedding against the teacher's embedding of the response.
"""
from __future__ import annotations

from contextlib import contextmanager
from functools import partial

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint


def reconstruction_loss(lm, soft_prompt: torch.Tensor, response_ids: torch.Tensor,
                        response_mask: torch.Tensor, checkpointing: bool = False,
                        per_row: bool = False, tokens_total: int | None = None) -> torch.Tensor:
    """Mean next-token cross-entropy over real response tokens (right-padded ids); per_row: one
    mean per row [B] instead of one over all tokens. tokens_total: the sum divided by this count
    instead (this process's share of a batch split over processes: the shares then add up to the
    whole batch's mean).

    checkpointing: each decoder layer keeps only its input and runs again in backward, and the
    LM head + cross-entropy run in chunks that are recomputed too, so neither the layers'
    activations nor the [tokens, vocabulary] logits are held at once."""
    n_prompt = soft_prompt.shape[1]
    embed = lm.get_input_embeddings()
    inputs = torch.cat([soft_prompt.to(embed.weight.dtype), embed(response_ids)], dim=1)
    mask = torch.cat([response_mask.new_ones(response_mask.shape[0], n_prompt), response_mask], dim=1)
    with checkpointed_layers(lm.base_model, checkpointing):
        hidden = lm.base_model(inputs_embeds=inputs, attention_mask=mask, use_cache=False).last_hidden_state
    # the state at position p predicts token p+1: the last prompt vector predicts response token 0
    real = response_mask.bool()
    predictors = hidden[:, n_prompt - 1: -1][real]
    labels = response_ids[real]
    head = lm.get_output_embeddings()
    if not checkpointing:
        token_ce = F.cross_entropy(head(predictors).float(), labels, reduction="none")
    else:
        token_ce = torch.cat([checkpoint(_token_cross_entropy, head, predictors[start:start + CE_CHUNK],
                                         labels[start:start + CE_CHUNK], use_reentrant=False)
                              for start in range(0, len(labels), CE_CHUNK)])
    if not per_row:
        return token_ce.mean() if tokens_total is None else token_ce.sum() / tokens_total
    rows = torch.arange(real.shape[0], device=real.device)[:, None].expand_as(real)[real]
    sums = token_ce.new_zeros(real.shape[0]).index_add(0, rows, token_ce)
    return sums / real.sum(1).clamp(min=1)


CE_CHUNK = 512  # response positions per LM-head chunk: 512 x a 49k vocabulary = 100 MB of fp32 logits


def _token_cross_entropy(head, states: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(head(states).float(), labels, reduction="none")


def margin_loss(own: torch.Tensor, other: torch.Tensor, margin: float, rows_total: int | None = None) -> torch.Tensor:
    """Hinge on per-row reconstruction losses: each response must be read better (by `margin`
    nats per token) from its own soft prompt than from another row's. rows_total: as tokens_total
    of reconstruction_loss, for rows."""
    hinge = F.relu(margin + own - other)
    return hinge.mean() if rows_total is None else hinge.sum() / rows_total


@contextmanager
def checkpointed_layers(base, enabled: bool = True):
    """Within the block, every decoder layer of `base` runs under activation checkpointing.
    Done here rather than with transformers' switch, which also needs the frozen model in
    training mode; only for passes without a KV cache (a recomputed layer would append twice)."""
    layers = getattr(base, "layers", None) if enabled else None
    if enabled and layers is None:
        raise ValueError(f"gradient checkpointing needs the decoder layers at .layers; "
                         f"{type(base).__name__} has none")
    for layer in layers or ():
        layer.forward = partial(checkpoint, type(layer).forward.__get__(layer), use_reentrant=False)
    try:
        yield
    finally:
        for layer in layers or ():
            del layer.forward


def alignment_loss(embedding: torch.Tensor, target: torch.Tensor, kind: str = "mse",
                   rows_total: int | None = None) -> torch.Tensor:
    """kind: "mse" (the paper's, mean over dimensions) or "cosine" (1 − cosine similarity), the mean
    over rows (rows_total: the sum divided by this count, as in reconstruction_loss)."""
    if kind not in ("mse", "cosine"):
        raise ValueError(f"alignment loss must be 'mse' or 'cosine', got {kind!r}")
    embedding, target = embedding.float(), target.float()
    if kind == "mse" and rows_total is None:
        return F.mse_loss(embedding, target)
    if kind == "mse":
        per_row = (embedding - target).pow(2).mean(-1)
    else:
        per_row = 1 - F.cosine_similarity(embedding, target, dim=-1)
    return per_row.mean() if rows_total is None else per_row.sum() / rows_total
