"""GPU memory per process for genembed's jobs, computed from a backbone's shapes (config.json
numbers), not measured: what to expect before renting GPUs. Printed as a markdown table.

    .venv/bin/python scripts/memory_plan.py                      # built-in shapes: SmolLM2-135M, Qwen3 0.6B–8B
    .venv/bin/python scripts/memory_plan.py --config path/to/config.json --processes 1,8,16

What is counted (bytes per element b: 2 for bf16/fp16 weights, 4 for float32):
  weights      every parameter of the frozen backbone, in --dtype
  trainable    (T + C)·hidden + recon hidden² + align hidden·dim, float32, ×4 (weight, grad, Adam m, v)
  encoder      the query's KV cache (no autograd) + the T + C special positions' saved activations
  recon        the reconstruction pass (C soft-prompt vectors + the response) with autograd: every
               layer's saved activations, or with --gradient-checkpointing each layer's input plus
               one layer's activations; and the LM head's float32 logits on response positions
               (chunks of 512 positions when checkpointing)
  generation   the KV cache of a batch answering queries (prompt + new tokens)
  teacher      an LLM2Vec teacher of the same backbone (the paper's: its adapters merged into a copy of the
               backbone's weights, in --dtype), held beside the student while training; its embeddings of
               the responses are computed once before the first step, so only its weights count, plus one
               batch's inference states in the first phase
Saved activations per token per layer (a llama-style block, no recomputation): the inputs of the
q/k/v, o, gate/up and down projections, the two norms, SiLU and gate products, and the attention
probabilities over the context: b·(6·hidden + 4·intermediate) + 2·heads·context bytes (softmax in
float32 would double the last term; SDPA kernels keep far less). Framework overhead (CUDA context,
allocator slack, ~0.5–1 GiB) is not included. Checked against this repository's CPU measurement of
SmolLM2-135M (lab/benchmarks/memory_by_pass.py, batch 32, float32): see docs/scale.md.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

# shapes from each model's config.json on the Hugging Face hub (this machine cannot download them)
SHAPES = {
    "SmolLM2-135M": dict(hidden_size=576, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
                         head_dim=64, intermediate_size=1536, vocab_size=49152, tie_word_embeddings=True),
    "Qwen3-0.6B": dict(hidden_size=1024, num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8,
                       head_dim=128, intermediate_size=3072, vocab_size=151936, tie_word_embeddings=True),
    "Qwen3-1.7B": dict(hidden_size=2048, num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8,
                       head_dim=128, intermediate_size=6144, vocab_size=151936, tie_word_embeddings=True),
    "Qwen3-4B": dict(hidden_size=2560, num_hidden_layers=36, num_attention_heads=32, num_key_value_heads=8,
                     head_dim=128, intermediate_size=9728, vocab_size=151936, tie_word_embeddings=True),
    "Qwen3-8B": dict(hidden_size=4096, num_hidden_layers=36, num_attention_heads=32, num_key_value_heads=8,
                     head_dim=128, intermediate_size=12288, vocab_size=151936, tie_word_embeddings=False),
}
GIB = 2**30


def parameters(s: dict) -> int:
    h, L, inter, v = s["hidden_size"], s["num_hidden_layers"], s["intermediate_size"], s["vocab_size"]
    hd = s.get("head_dim") or h // s["num_attention_heads"]
    q, kv = s["num_attention_heads"] * hd, s["num_key_value_heads"] * hd
    per_layer = h * q + 2 * h * kv + q * h + 3 * h * inter + 2 * h
    return v * h * (1 if s.get("tie_word_embeddings") else 2) + L * per_layer + h


def activations_per_token(s: dict, b: int, context: int) -> int:
    """Saved activations of one token in one layer, in bytes."""
    return b * (6 * s["hidden_size"] + 4 * s["intermediate_size"]) + 2 * s["num_attention_heads"] * context


def kv_bytes(s: dict, b: int, tokens: int) -> int:
    hd = s.get("head_dim") or s["hidden_size"] // s["num_attention_heads"]
    return 2 * s["num_hidden_layers"] * s["num_key_value_heads"] * hd * b * tokens


def plan(s: dict, rows: int, dtype_bytes: int, special: int, compression: int, query: int, response: int,
         checkpointing: bool, embedding_dim: int = 384) -> dict:
    h, L, v = s["hidden_size"], s["num_hidden_layers"], s["vocab_size"]
    weights = parameters(s) * dtype_bytes
    trainable = 4 * 4 * (special * h + h * h + h + h * embedding_dim + embedding_dim)
    encoder = rows * (kv_bytes(s, dtype_bytes, query)
                      + L * special * activations_per_token(s, dtype_bytes, query + special))
    seq = compression + response
    if checkpointing:
        layers = rows * seq * (L * h * dtype_bytes + activations_per_token(s, dtype_bytes, seq))
        logits = min(rows * response, 512) * v * 4 * 2  # one chunk's logits and their gradient
    else:
        layers = rows * seq * L * activations_per_token(s, dtype_bytes, seq)
        logits = rows * response * v * 4 * 2
    return {"weights": weights, "trainable": trainable, "encoder": encoder, "recon": layers + logits}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, action="append", help="A config.json (repeatable); default: the built-ins.")
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    ap.add_argument("--batch-size", type=int, default=32, help="Global batch (the paper's 32).")
    ap.add_argument("--processes", default="1,8,16", help="Process counts (GPUs) to show: batch / N rows each.")
    ap.add_argument("--thought-tokens", type=int, default=0)
    ap.add_argument("--compression-tokens", type=int, default=10)
    ap.add_argument("--query-tokens", type=int, default=168, help="Template + instruction + a 128-token query.")
    ap.add_argument("--response-tokens", type=int, default=64)
    ap.add_argument("--generate-batch", type=int, default=64)
    ap.add_argument("--generate-tokens", type=int, default=256 + 64, help="Prompt + new tokens per answered query.")
    args = ap.parse_args(argv)
    shapes = ({p.parent.name or p.stem: json.loads(p.read_text()) for p in args.config} if args.config else SHAPES)
    b = 4 if args.dtype == "float32" else 2
    special = args.thought_tokens + args.compression_tokens
    print(f"GiB per process, backbone weights in {args.dtype}, global batch {args.batch_size}, "
          f"{args.thought_tokens} + {args.compression_tokens} tokens, queries {args.query_tokens} and responses "
          f"{args.response_tokens} tokens (scripts/memory_plan.py)\n")
    print("| backbone | parameters | processes | rows each | weights | align only (default) | both losses | "
          "both + --gradient-checkpointing | the same + LLM2Vec teacher | generate (batch {}, {} tokens) |".format(
              args.generate_batch, args.generate_tokens))
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, s in shapes.items():
        s = s.get("text_config", s)
        for n in (int(x) for x in args.processes.split(",")):
            rows = max(args.batch_size // n, 1)
            full = plan(s, rows, b, special, args.compression_tokens, args.query_tokens, args.response_tokens, False)
            ckpt = plan(s, rows, b, special, args.compression_tokens, args.query_tokens, args.response_tokens, True)
            base = full["weights"] + full["trainable"] + full["encoder"]
            gen = full["weights"] + kv_bytes(s, b, args.generate_batch * args.generate_tokens)
            print(f"| {name} | {parameters(s) / 1e9:.2f} B | {n} | {rows} | {full['weights'] / GIB:.1f} | "
                  f"{base / GIB:.1f} | {(base + full['recon']) / GIB:.1f} | {(base + ckpt['recon']) / GIB:.1f} | "
                  f"{(base + ckpt['recon'] + full['weights']) / GIB:.1f} | {gen / GIB:.1f} |")


if __name__ == "__main__":
    main()
