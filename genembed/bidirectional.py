"""Decoder LLMs run with full (bidirectional) attention, as LLM2Vec uses them: every token attends to
every other token of its text, padding excepted.

Plain transformers, no remote code: the model is loaded as usual (sdpa or eager attention), each
attention module's `is_causal` flag is cleared (it is what sdpa falls back on when no mask is given),
and every forward gets an explicit 4-D padding-only mask, which transformers (4.56 and later) passes to
the attention kernels as it is, instead of building its causal mask. Supported families: those whose
attention takes its mask only from that argument (FAMILIES); any other is refused with its model_type.
"""
from __future__ import annotations

from .errors import InputError

# model_type -> family name (the families whose attention reads the 4-D mask it is given, and nothing else)
FAMILIES = {"llama": "Llama", "mistral": "Mistral", "qwen2": "Qwen2", "qwen3": "Qwen3", "gemma": "Gemma"}
# flash-attention and flex build their own (causal) masks from flags, so they are not used here
ATTENTION = ("sdpa", "eager")


class BidirectionalError(InputError):
    """A model that cannot be run with bidirectional attention."""


def check_family(config, where: str) -> str:
    """config's model_type, or BidirectionalError naming it when it has no bidirectional implementation."""
    model_type = getattr(config, "model_type", None)
    if model_type not in FAMILIES:
        raise BidirectionalError(f"{where}: model_type {model_type!r} has no bidirectional implementation "
                                 f"(supported: {', '.join(sorted(FAMILIES))})")
    return model_type


def make_bidirectional(model, where: str = "model"):
    """model (a transformers base or causal-LM model of a supported family), switched to bidirectional
    attention in place and returned. Run it through `forward` (which passes the padding-only mask)."""
    config = model.config
    check_family(config, where)
    implementation = getattr(config, "_attn_implementation", None) or "eager"
    if implementation not in ATTENTION:
        raise BidirectionalError(f"{where}: attention implementation {implementation!r} cannot run bidirectionally "
                                 f"here; load the model with attn_implementation in {ATTENTION}")
    flagged = 0
    for module in model.modules():
        if isinstance(getattr(module, "is_causal", None), bool) and hasattr(module, "o_proj"):
            module.is_causal = False
            flagged += 1
    if flagged == 0:
        raise BidirectionalError(f"{where}: found no attention module to make bidirectional "
                                 f"(model_type {config.model_type!r}, class {type(model).__name__})")
    config.is_causal = False  # transformers 5 reads it too when it builds a mask itself
    if config.model_type == "gemma":
        config.use_bidirectional_attention = True
    model._genembed_bidirectional = True
    return model


def padding_mask(attention_mask, dtype):
    """The 4-D additive mask [batch, 1, length, length] of a 2-D 0/1 padding mask: 0 where the key is a
    token, the dtype's minimum where it is padding, the same for every query (no causal triangle)."""
    import torch

    keys = attention_mask[:, None, None, :].to(torch.bool)
    blocked = torch.tensor(torch.finfo(dtype).min, dtype=dtype, device=attention_mask.device)
    zero = torch.zeros((), dtype=dtype, device=attention_mask.device)
    return torch.where(keys, zero, blocked).expand(-1, 1, attention_mask.shape[1], -1)


def forward(model, input_ids, attention_mask):
    """The last hidden states [batch, length, hidden] of a model made bidirectional, every token attending
    to every non-padding token of its row."""
    if not getattr(model, "_genembed_bidirectional", False):
        raise BidirectionalError("bidirectional.forward: the model was not made bidirectional (make_bidirectional)")
    base = getattr(model, "base_model", model)  # the transformer under a causal-LM head
    dtype = next(model.parameters()).dtype
    out = base(input_ids=input_ids, attention_mask=padding_mask(attention_mask, dtype), use_cache=False)
    return out.last_hidden_state
