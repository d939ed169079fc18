"""Would 16-bit weights keep the backends' quality bound? Decoding one text is memory-bound (the backbone
reads its float32 weights once per token), so halving the bytes read is the one lever left for it.

    .venv/bin/python lab/experiments/half_weights.py [--texts 40] [--decode-tokens 48]

On the bundled default, against its float32 self, two variants of every Linear of the backbone (LM
head included):
* "fp16-rounded weights, fp32 compute": every backbone parameter rounded to float16 and back; the
  arithmetic stays float32. What a kernel that reads fp16 weights and computes in fp32 would give.
* "fp16 compute": weights held in float16 and, for the small-batch calls of decoding (≤ 64 rows),
  the activations cast to float16 too (torch's CPU float16 matmul); larger calls (encoding)
  compute in float32 from the float16 weights.
For each: the cosine of --texts held-out embeddings to float32's (min, mean), the share of greedy
decodes identical to float32's through the default decoder and through the soft prompt (bound ≥ 90%),
and the tokens/s of decoding one text (batch 1, soft prompt, 64 tokens).
Writes lab/experiments/results/half_weights.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import genembed  # noqa: E402
from genembed.data import load_sharegpt  # noqa: E402
from genembed.generate import greedy_from_embeddings  # noqa: E402


class HalfComputeLinear(torch.nn.Module):
    def __init__(self, linear: torch.nn.Linear):
        super().__init__()
        self.weight = linear.weight.detach().half()
        self.bias = None if linear.bias is None else linear.bias.detach()

    def forward(self, x):
        if x.shape[:-1].numel() <= 64:
            y = F.linear(x.half(), self.weight).float()
        else:
            y = F.linear(x, self.weight.float())
        return y if self.bias is None else y + self.bias


def swap_linears(module: torch.nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, torch.nn.Linear):
            setattr(module, name, HalfComputeLinear(child))
        else:
            swap_linears(child)


def one_text_tokens_per_s(model, tokens: int = 64) -> float:
    ids, mask = model.tokenize(["How do I boil an egg?"])
    with torch.no_grad():
        soft = model(ids, mask)[0]
    greedy_from_embeddings(model.backbone, soft, 2)  # warm
    start = time.perf_counter()
    greedy_from_embeddings(model.backbone, soft, tokens)
    return tokens / (time.perf_counter() - start)


def measure(model, texts, decode_tokens) -> dict:
    model.prefix_cache.clear()
    return {"embeddings": torch.as_tensor(model.encode(texts, batch_size=20)),
            "decoded": model.decode(texts, max_new_tokens=decode_tokens, batch_size=20),
            "soft": model.decode(texts, max_new_tokens=decode_tokens, batch_size=20, via="soft-prompt"),
            "one_text_tokens_per_s": one_text_tokens_per_s(model)}


def compare(ref: dict, new: dict) -> dict:
    cos = F.cosine_similarity(ref["embeddings"], new["embeddings"])
    n = len(ref["decoded"])
    return {"cosine_min": cos.min().item(), "cosine_mean": cos.mean().item(),
            "default_decoder_identical": sum(a == b for a, b in zip(ref["decoded"], new["decoded"])) / n,
            "soft_prompt_identical": sum(a == b for a, b in zip(ref["soft"], new["soft"])) / n,
            "one_text_tokens_per_s": new["one_text_tokens_per_s"]}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--texts", type=int, default=40)
    ap.add_argument("--decode-tokens", type=int, default=48)
    ap.add_argument("--out", default=str(ROOT / "lab" / "experiments" / "results" / "half_weights.json"))
    args = ap.parse_args(argv)
    texts = [c.query for c in load_sharegpt("heldout")][: args.texts]
    model = genembed.load(None)
    lm = model.backbone.model
    ref = measure(model, texts, args.decode_tokens)
    out = {"command": "python lab/experiments/half_weights.py " + " ".join(argv or sys.argv[1:]), "texts": len(texts),
           "threads": torch.get_num_threads(), "float32": {"one_text_tokens_per_s": ref["one_text_tokens_per_s"]}}
    original = {n: p.detach().clone() for n, p in lm.named_parameters()}
    with torch.no_grad():
        for _, p in lm.named_parameters():
            p.copy_(p.half().float())
    out["fp16-rounded weights, fp32 compute"] = compare(ref, measure(model, texts, args.decode_tokens))
    with torch.no_grad():
        for n, p in lm.named_parameters():
            p.copy_(original[n])
    swap_linears(lm)
    out["fp16 compute"] = compare(ref, measure(model, texts, args.decode_tokens))
    for k, v in out.items():
        print(k, v)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
