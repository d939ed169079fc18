"""The two losses of LLM2Vec-Gen.

reconstruction: the frozen LLM reads only the soft prompt, then the response; cross-entropy of
    each response token given everything before it. The LM head runs on response positions
    only (not on the soft prompt or padding), which saves most of the vocabulary projection.
    The same cross-entropy after any prefix (a decoded request, a real query) is what the
    decoding evaluation measures.
alignment: the mean squared error of the embedding against the teacher's embedding of the response.
"""
from __future__ import annotations

from contextlib import contextmanager
from functools import partial

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from .errors import InputError
from .inputs import positions


def reconstruction_loss(lm, soft_prompt: torch.Tensor, response_ids: torch.Tensor,
                        response_mask: torch.Tensor, checkpointing: bool = False,
                        per_row: bool = False, tokens_total: int | None = None,
                        prompt_mask: torch.Tensor | None = None, target_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean next-token cross-entropy over real response tokens (right-padded ids) read after a prefix
    of input embeddings (the soft prompt) [B, P, hidden]; per_row: one mean per row [B] instead of one
    over all tokens. tokens_total: the sum divided by this count instead (this process's share of a
    batch split over processes: the shares then add up to the whole batch's mean). prompt_mask: the
    prefix is left-padded under this mask (positions then skip its padding); None: all real.
    target_mask: the response tokens that are predicted (default: every real one); the others are read
    but not scored (the official collator does not score a token equal to the pad id).

    checkpointing: each decoder layer keeps only its input and runs again in backward, and the
    LM head + cross-entropy run in chunks that are recomputed too, so neither the layers'
    activations nor the [tokens, vocabulary] logits are held at once."""
    n_prompt = soft_prompt.shape[1]
    embed = lm.get_input_embeddings()
    inputs = torch.cat([soft_prompt.to(embed.weight.dtype), embed(response_ids)], dim=1)
    if prompt_mask is None:
        prompt_mask = response_mask.new_ones(response_mask.shape[0], n_prompt)
    mask = torch.cat([prompt_mask.to(response_mask), response_mask], dim=1)
    with checkpointed_layers(lm.base_model, checkpointing):
        hidden = lm.base_model(inputs_embeds=inputs, attention_mask=mask, position_ids=positions(mask),
                               use_cache=False).last_hidden_state
    # the state at position p predicts token p+1: the last prompt vector predicts response token 0
    real = (response_mask if target_mask is None else target_mask * response_mask).bool()
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


@contextmanager
def checkpointed_layers(base, enabled: bool = True):
    """Within the block, every decoder layer of `base` runs under activation checkpointing.
    Done here rather than with transformers' switch, which also needs the frozen model in
    training mode; only for passes without a KV cache (a recomputed layer would append twice)."""
    layers = getattr(base, "layers", None) if enabled else None
    if enabled and layers is None:
        raise InputError(f"gradient checkpointing needs the decoder layers at .layers; "
                         f"{type(base).__name__} has none")
    for layer in layers or ():
        layer.forward = partial(checkpoint, type(layer).forward.__get__(layer), use_reentrant=False)
    try:
        yield
    finally:
        for layer in layers or ():
            del layer.forward


def alignment_loss(embedding: torch.Tensor, target: torch.Tensor, rows_total: int | None = None) -> torch.Tensor:
    """The paper's alignment loss: squared error averaged over dimensions, then rows (rows_total: the
    sum over rows divided by this count, as tokens_total in reconstruction_loss)."""
    embedding, target = embedding.float(), target.float()
    if rows_total is None:  # (F.mse_loss: the rounding every run before this file was trimmed had, bit for bit)
        return F.mse_loss(embedding, target)
    return (embedding - target).pow(2).mean(-1).sum() / rows_total
