"""int8 compute for encode with SmolLM2's outlier input channels kept in float32 (LLM.int8()-style).

    .venv/bin/python lab/experiments/outlier_int8.py [--texts 200] [--calibration 64] [--outliers 0,8,16,32]

SmoothQuant and per-token scales (lab/experiments/smoothquant_int8.py) missed the bound: a few hidden
channels carry most of an activation's energy and swamp any shared scale. Here those channels leave the
int8 product instead (Dettmers et al., 2022): for each Linear of the body, the k input channels with the
largest max|x_j| on --calibration training-split queries are multiplied in float32, and the rest go
through torch's dynamic int8 Linear (fbgemm: one activation scale per call, per-channel int8 weights),
whose activation range no longer includes the outliers. The result is the sum of the two products.

This is the real kernel path, not a simulation, so the speed it prints is what the quality costs.
On the bundled default, --texts held-out ShareGPT queries (and, with --docs, ShareGPT answers cut to
256 tokens): cosine of each embedding to float32's (the bound: >= 0.995 each) and texts/s at batch
32, float32 and every variant in one run. Writes lab/experiments/results/outlier_int8.json.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "lab" / "experiments"))

import genembed  # noqa: E402
from genembed.data import load_sharegpt  # noqa: E402
from smoothquant_int8 import encode, input_ranges  # noqa: E402


class OutlierInt8Linear(torch.nn.Module):
    """y = int8(x without the outlier channels) @ W' + x[outliers] @ W[:, outliers] (float32)."""

    def __init__(self, linear: torch.nn.Linear, outliers: torch.Tensor, per_token: bool = False):
        super().__init__()
        self.per_token = per_token
        from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

        w = linear.weight.detach().clone()
        self.outliers = outliers
        self.w_outliers = w[:, outliers].clone()
        w[:, outliers] = 0
        scale = w.abs().amax(1).clamp(min=1e-8) / 127
        qw = torch.quantize_per_channel(w, scale.double(), torch.zeros_like(scale, dtype=torch.long), 0, torch.qint8)
        self.int8 = DynamicLinear(w.shape[1], w.shape[0], dtype=torch.qint8)
        self.int8.set_weight_bias(qw, linear.bias)

    def forward(self, x):
        part = x[..., self.outliers]
        rest = x.index_fill(-1, self.outliers, 0.0) if len(self.outliers) else x
        if self.per_token:  # W(x / s) s = Wx: each row scaled to max 1 gives the per-tensor kernel per-token scales
            s = rest.abs().amax(-1, keepdim=True).clamp(min=1e-8)
            y = self.int8(rest / s) * s
        else:
            y = self.int8(rest)
        if self.int8.bias() is not None and self.per_token:
            y = y + self.int8.bias() * (1 - s)  # the bias was scaled with the row; restore it
        return y + part @ self.w_outliers.T if len(self.outliers) else y


def quantize(layers, ranges, k: int, keep=(), per_token=False) -> None:
    """Every body Linear to OutlierInt8Linear with its k largest input channels in float32."""
    for name, module in list(layers.named_modules()):
        for child_name, child in list(module.named_children()):
            full = f"{name}.{child_name}" if name else child_name
            if isinstance(child, torch.nn.Linear) and child_name not in keep:
                outliers = torch.topk(ranges[full], k).indices.sort().values if k else torch.empty(0, dtype=torch.long)
                setattr(module, child_name, OutlierInt8Linear(child, outliers, per_token))


def documents(model, n: int, length: int = 256) -> list[str]:
    tok = model.backbone.tokenizer
    out = []
    for c in load_sharegpt("heldout"):
        ids = tok(c.answer, add_special_tokens=False)["input_ids"]
        if len(ids) >= length:
            out.append(tok.decode(ids[:length]))
        if len(out) == n:
            break
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--texts", type=int, default=200)
    ap.add_argument("--docs", type=int, default=0, help="also this many 256-token documents")
    ap.add_argument("--calibration", type=int, default=64)
    ap.add_argument("--outliers", default="0,8,16,32", help="float32 input channels per Linear, one variant each")
    ap.add_argument("--per-token", action="store_true", help="one activation scale per row (rows divided by their "
                    "max before the per-tensor kernel, the product multiplied back)")
    ap.add_argument("--keep", default="", help="Linear names (e.g. v_proj,o_proj) left float32 in every variant")
    ap.add_argument("--out", default=str(ROOT / "lab" / "experiments" / "results" / "outlier_int8.json"))
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    sets = {"queries": [c.query for c in load_sharegpt("heldout")][: args.texts]}
    calibration = [c.query for c in load_sharegpt("train")][: args.calibration]
    model = genembed.load(None)
    if args.docs:
        sets["256-token docs"] = documents(model, args.docs)
    lm = model.backbone.model
    refs = {name: encode(model, texts) for name, texts in sets.items()}
    out = {"command": "python lab/experiments/outlier_int8.py " + " ".join(argv or sys.argv[1:]),
           "threads": torch.get_num_threads(),
           "float32": {name: {"texts": len(sets[name]), "texts_per_s": r[1]} for name, r in refs.items()}}
    print("float32", out["float32"], flush=True)
    ranges = input_ranges(model, calibration)
    layers = copy.deepcopy(lm.model.layers)
    keep = tuple(k for k in args.keep.split(",") if k)
    for k in [int(x) for x in args.outliers.split(",")]:
        lm.model.layers = copy.deepcopy(layers)
        quantize(lm.model.layers, ranges, k, keep, args.per_token)
        row = {}
        for name, texts in sets.items():
            emb, speed = encode(model, texts)
            cos = F.cosine_similarity(refs[name][0], emb)
            row[name] = {"cosine_min": cos.min().item(), "cosine_mean": cos.mean().item(),
                         "share_at_least_0.995": (cos >= 0.995).float().mean().item(), "texts_per_s": speed,
                         "speed_vs_float32": speed / refs[name][1]}
        label = (("per-token, " if args.per_token else "per-tensor, ") + f"{k} outlier channels float32"
                 + (f", {'/'.join(keep)} float32" if keep else ""))
        out[label] = row
        print(label, row, flush=True)
    lm.model.layers = layers
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
