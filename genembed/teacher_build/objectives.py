"""The two LLM2Vec objectives.

MNTP (masked next-token prediction): a share of a block's tokens is chosen (never a special token, never
the first position, which has no state before it); 80% of the chosen become the mask token, 10% a random
token, 10% stay (the Hugging Face MLM collator's split, which the original's default collator uses).
Each chosen token i is predicted from the output at position i - 1 through the LM head: the causal LM's
own "next token" alignment, under bidirectional attention. The loss is the cross-entropy over the chosen
tokens alone.

SimCSE (unsupervised): a batch of texts runs twice under dropout; each text's mean-pooled state of the
first run must pick out its own second run among the batch's, by cosine similarity over a temperature,
a cross-entropy over the batch (the original's HardNegativeNLLLoss without hard negatives).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE = -100  # the label of a position that is not predicted


def mask_token_id(tokenizer) -> int:
    """The token that stands for a masked one: the tokenizer's mask token when it has one, else '_' (the
    original's "blank" mask for Llama-style tokenizers) when that is a single token, else the pad token."""
    if tokenizer.mask_token_id is not None:
        return int(tokenizer.mask_token_id)
    ids = tokenizer.convert_tokens_to_ids(["_"])
    if ids and ids[0] is not None and ids[0] != tokenizer.unk_token_id:
        return int(ids[0])
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return int(pad)


def mask_tokens(ids: torch.Tensor, special: torch.Tensor, rate: float, mask_id: int, vocab_size: int,
                generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, labels) of a [batch, length] block of ids: about `rate` of the positions that are not
    special (`special`, bool, same shape) and not the first are chosen; labels hold the original id there
    and IGNORE elsewhere; inputs are the ids with the chosen ones replaced as the module docstring says."""
    chance = torch.full(ids.shape, float(rate))
    chance[special] = 0.0
    chance[:, 0] = 0.0
    chosen = torch.bernoulli(chance, generator=generator).bool()
    labels = torch.where(chosen, ids, torch.full_like(ids, IGNORE))
    draw = torch.rand(ids.shape, generator=generator)
    random_ids = torch.randint(vocab_size, ids.shape, generator=generator)
    inputs = ids.clone()
    inputs[chosen & (draw < 0.8)] = mask_id
    swap = chosen & (draw >= 0.8) & (draw < 0.9)
    inputs[swap] = random_ids[swap]
    return inputs, labels


def mntp_loss(hidden: torch.Tensor, labels: torch.Tensor, head, total: int | None = None):
    """(summed cross-entropy / total, number predicted, number right): every labelled token i predicted
    from hidden[:, i - 1] through `head` (the LM head). total: the count the loss is averaged over (the
    whole step's, when this is one of its micro-batches; default this batch's)."""
    targets = labels[:, 1:]
    chosen = targets != IGNORE
    count = int(chosen.sum())
    if count == 0:
        return hidden.sum() * 0.0, 0, 0
    logits = head(hidden[:, :-1][chosen]).float()  # the head on the chosen positions alone: 20% of the cost
    right = int((logits.argmax(-1) == targets[chosen]).sum())
    loss = F.cross_entropy(logits, targets[chosen], reduction="sum") / (total or count)
    return loss, count, right


def mean_pool_last(hidden: torch.Tensor, own: torch.Tensor) -> torch.Tensor:
    """[batch, dim]: the mean of each row's last own[row] states (left-padded rows: a text's own tokens
    are its last ones), in float32."""
    length = hidden.shape[1]
    keep = torch.arange(length, device=hidden.device)[None, :] >= (length - own.to(hidden.device))[:, None]
    keep = keep.to(torch.float32)[..., None]
    return (hidden.float() * keep).sum(1) / keep.sum(1)


def simcse_loss(first: torch.Tensor, second: torch.Tensor, temperature: float) -> torch.Tensor:
    """Cross-entropy of picking second[i] for first[i] among all of `second`, by cosine / temperature."""
    scores = F.normalize(first, dim=-1) @ F.normalize(second, dim=-1).T / temperature
    return F.cross_entropy(scores, torch.arange(len(first), device=scores.device))
