"""The two losses of LLM2Vec-Gen.

reconstruction: the frozen LLM reads only the soft prompt, then the response; cross-entropy of
    each response token given everything before it. The LM head runs on response positions
    only (not on the soft prompt or padding), which saves most of the vocabulary projection.
alignment: the embedding against the teacher's embedding of the response.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def reconstruction_loss(lm, soft_prompt: torch.Tensor, response_ids: torch.Tensor,
                        response_mask: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over real response tokens (right-padded ids)."""
    n_prompt = soft_prompt.shape[1]
    embed = lm.get_input_embeddings()
    inputs = torch.cat([soft_prompt.to(embed.weight.dtype), embed(response_ids)], dim=1)
    mask = torch.cat([response_mask.new_ones(response_mask.shape[0], n_prompt), response_mask], dim=1)
    hidden = lm.base_model(inputs_embeds=inputs, attention_mask=mask, use_cache=False).last_hidden_state
    # the state at position p predicts token p+1: the last prompt vector predicts response token 0
    predictors = hidden[:, n_prompt - 1: -1][response_mask.bool()]
    logits = lm.get_output_embeddings()(predictors).float()
    return F.cross_entropy(logits, response_ids[response_mask.bool()])


def alignment_loss(embedding: torch.Tensor, target: torch.Tensor, kind: str = "mse") -> torch.Tensor:
    """kind: "mse" (the paper's, mean over dimensions) or "cosine" (1 − cosine similarity)."""
    embedding, target = embedding.float(), target.float()
    if kind == "mse":
        return F.mse_loss(embedding, target)
    if kind == "cosine":
        return (1 - F.cosine_similarity(embedding, target, dim=-1)).mean()
    raise ValueError(f"alignment loss must be 'mse' or 'cosine', got {kind!r}")
