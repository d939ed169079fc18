"""Can int8 compute keep the quality bound on encode if SmolLM2's outlier channels are smoothed first?

    .venv/bin/python lab/experiments/smoothquant_int8.py [--texts 200] [--calibration 64] [--alphas 0.5,0.75]

Encoding is compute-bound in float32, so only int8 matmuls could double it. Plain dynamic int8 of every
Linear (one activation scale per call) gave a mean cosine of 0.48 to float32: a few hidden channels
carry most of the energy and swamp the scale. SmoothQuant (Xiao et al., 2023) moves that range from
the activations into the weights: input channel j of a Linear is divided by
s_j = max|X_j|^alpha / max|W_:,j|^(1 - alpha) and the weight column multiplied by it, which leaves the
float32 function unchanged. Here the division is folded into what feeds each Linear:
* q/k/v: into input_layernorm's weight; gate/up: into post_attention_layernorm's weight;
* down: into up's output rows (the MLP multiplies silu(gate) by up elementwise);
* o: into v's output rows, one factor per key/value channel shared by the query heads of its group.
max|X_j| comes from encoding --calibration ShareGPT training-split queries. Then every Linear of the
body goes to torch's dynamic int8 (per-channel weights; torch.ao, deprecated but present in torch
2.13). The LM head and the embeddings stay float32 (encoding does not use the head).

On the bundled default, --texts held-out ShareGPT queries: the cosine of each embedding to float32's
(min, mean; the bound: ≥ 0.995 each) and encode texts/s (batch 32), float32 and each variant in
this one run. Writes lab/experiments/results/smoothquant_int8.json.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import genembed  # noqa: E402
from genembed.data import load_sharegpt  # noqa: E402


def input_ranges(model, texts) -> dict[str, torch.Tensor]:
    """max |x| per input channel of every Linear of the body, over the calibration texts."""
    ranges, hooks = {}, []
    for name, module in model.backbone.model.model.layers.named_modules():
        if isinstance(module, torch.nn.Linear):
            def hook(_, args, name=name):
                m = args[0].detach().abs().flatten(0, -2).amax(0)
                ranges[name] = m if name not in ranges else torch.maximum(ranges[name], m)
            hooks.append(module.register_forward_pre_hook(hook))
    model.prefix_cache.clear()
    model.encode(texts, batch_size=16)
    for h in hooks:
        h.remove()
    return ranges


def factors(x_max, weights, alpha):
    w_max = torch.cat([w.abs() for w in weights], 0).amax(0)
    return (x_max.clamp(min=1e-5) ** alpha / w_max.clamp(min=1e-5) ** (1 - alpha)).clamp(min=1e-5)


@torch.no_grad()
def smooth(lm, ranges, alpha: float) -> None:
    cfg = lm.config
    heads, kv_heads = cfg.num_attention_heads, cfg.num_key_value_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    group = heads // kv_heads
    for i, layer in enumerate(lm.model.layers):
        at, mlp = layer.self_attn, layer.mlp
        s = factors(ranges[f"{i}.self_attn.q_proj"], [at.q_proj.weight, at.k_proj.weight, at.v_proj.weight], alpha)
        layer.input_layernorm.weight.div_(s)
        for lin in (at.q_proj, at.k_proj, at.v_proj):
            lin.weight.mul_(s)
        s = factors(ranges[f"{i}.mlp.gate_proj"], [mlp.gate_proj.weight, mlp.up_proj.weight], alpha)
        layer.post_attention_layernorm.weight.div_(s)
        for lin in (mlp.gate_proj, mlp.up_proj):
            lin.weight.mul_(s)
        s = factors(ranges[f"{i}.mlp.down_proj"], [mlp.down_proj.weight], alpha)
        mlp.up_proj.weight.div_(s[:, None])
        mlp.down_proj.weight.mul_(s)
        # o's input channel (head h, dim d) is a mix of v's channel (h // group, d): one factor per v channel
        x = ranges[f"{i}.self_attn.o_proj"].view(kv_heads, group, head_dim).amax(1)
        w = at.o_proj.weight.abs().amax(0).view(kv_heads, group, head_dim).amax(1)
        s = (x.clamp(min=1e-5) ** alpha / w.clamp(min=1e-5) ** (1 - alpha)).clamp(min=1e-5)
        at.v_proj.weight.div_(s.reshape(-1)[:, None])
        at.o_proj.weight.mul_(s.repeat_interleave(group, 0).reshape(-1))


def int8(base) -> None:
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_dynamic(base.layers, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8,
                         inplace=True)


class PerTokenInt8(torch.nn.Module):
    """Simulated int8 with one scale per token (row) of the activations and per output channel of the
    weight, computed in float32: what a per-token int8 kernel (torchao's dynamic int8) would give, not its speed."""

    def __init__(self, linear: torch.nn.Linear):
        super().__init__()
        w = linear.weight.detach()
        scale = w.abs().amax(1, keepdim=True).clamp(min=1e-8) / 127
        self.weight = (w / scale).round().clamp(-127, 127) * scale
        self.bias = linear.bias

    def forward(self, x):
        scale = x.abs().amax(-1, keepdim=True).clamp(min=1e-8) / 127
        return F.linear((x / scale).round().clamp(-127, 127) * scale, self.weight, self.bias)


def per_token(module, keep=()) -> None:
    """Every Linear under module to PerTokenInt8, except those whose name is in keep (left float32)."""
    for name, child in module.named_children():
        if isinstance(child, torch.nn.Linear):
            if name not in keep:
                setattr(module, name, PerTokenInt8(child))
        else:
            per_token(child, keep)


def encode(model, texts):
    model.prefix_cache.clear()
    model.encode(texts[:32], batch_size=32)  # warm
    model.prefix_cache.clear()
    start = time.perf_counter()
    e = torch.as_tensor(model.encode(texts, batch_size=32))
    return e, len(texts) / (time.perf_counter() - start)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--texts", type=int, default=200)
    ap.add_argument("--calibration", type=int, default=64)
    ap.add_argument("--alphas", default="0.5,0.75")
    ap.add_argument("--keep", default="", help="Linear names (e.g. down_proj,o_proj) left float32 in the per-token "
                    "variants")
    ap.add_argument("--out", default=str(ROOT / "lab" / "experiments" / "results" / "smoothquant_int8.json"))
    args = ap.parse_args(argv)
    texts = [c.query for c in load_sharegpt("heldout")][: args.texts]
    calibration = [c.query for c in load_sharegpt("train")][: args.calibration]
    model = genembed.load(None)
    lm = model.backbone.model
    ref, ref_speed = encode(model, texts)
    out = {"command": "python lab/experiments/smoothquant_int8.py " + " ".join(argv or sys.argv[1:]), "texts": len(texts),
           "threads": torch.get_num_threads(), "float32": {"texts_per_s": ref_speed}}
    ranges = input_ranges(model, calibration)
    layers = copy.deepcopy(lm.model.layers)  # float32 body, restored before each variant
    alphas = [None] + [float(a) for a in args.alphas.split(",")]
    keep = tuple(k for k in args.keep.split(",") if k)
    out["per-token variants keep float32"] = list(keep)
    for scheme, alpha in [(q, a) for q in ("per-tensor int8", "per-token int8 (simulated)") for a in alphas]:
        lm.model.layers = copy.deepcopy(layers)  # (smoothing and int8 touch nothing outside the layers)
        if alpha is not None:
            smooth(lm, ranges, alpha)
        int8(lm.model) if scheme == "per-tensor int8" else per_token(lm.model.layers, keep)
        emb, speed = encode(model, texts)
        cos = F.cosine_similarity(ref, emb)
        name = scheme if alpha is None else f"smoothquant alpha {alpha} + {scheme}"
        out[name] = {"cosine_min": cos.min().item(), "cosine_mean": cos.mean().item(),
                     "share_at_least_0.995": (cos >= 0.995).float().mean().item(), "texts_per_s": speed,
                     "speed_vs_float32": speed / ref_speed}
        print(name, out[name], flush=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
