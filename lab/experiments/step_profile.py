"""What would caching each query's keys/values across epochs save? (the recipe sweeps' "cheaper steps" question)

Times, on the default's training rows, one full training step (student forward, reconstruction
pass, backward) against the frozen query pass alone (no autograd; the shared head is already
cached), and estimates the memory that keeping every query's keys/values for the next epoch takes.

    .venv/bin/python lab/experiments/step_profile.py [RESPONSES_JSONL] [BATCHES]
"""
import sys
import time

import numpy as np
import torch

from genembed.backbone import load_backbone
from genembed.inputs import pad, prompt_ids, response_ids
from genembed.jsonl import read_rows
from genembed.model import GenEmbed
from genembed.recipe import TrainConfig
from genembed.teachers import load_teacher
from genembed.train import batch_loss

responses = sys.argv[1] if len(sys.argv) > 1 else "runs/default/train.jsonl"
batches = int(sys.argv[2]) if len(sys.argv) > 2 else 6
cfg = TrainConfig(responses=responses, out_dir="")
rows = read_rows(responses)
backbone = load_backbone(cfg.backbone)
teacher = load_teacher(cfg.teacher, backbone)  # only its name and dimension are used: targets are random
model = GenEmbed.create(backbone, embedding_dim=teacher.dim, teacher=teacher.name,
                        num_thought_tokens=cfg.num_thought_tokens, num_compression_tokens=cfg.num_compression_tokens,
                        max_text_tokens=cfg.max_query_tokens)
tok = backbone.tokenizer
instruction = model.resolve_instruction(cfg.instruction)
order = np.random.default_rng(0).permutation(len(rows))
targets = torch.nn.functional.normalize(torch.randn(cfg.batch_size, teacher.dim), dim=-1)  # timing only
w_align = cfg.alignment_weight(teacher.dim)
step_s, query_s = [], []
for b in range(batches + 1):  # the first batch warms up (and fills the shared-head cache)
    batch = [rows[i] for i in order[b * cfg.batch_size:(b + 1) * cfg.batch_size]]
    q = prompt_ids(tok, [r["query"] for r in batch], instruction, cfg.max_query_tokens)
    r = response_ids(tok, [r["response"] for r in batch], cfg.max_response_tokens)
    t0 = time.perf_counter()
    loss, _, _ = batch_loss(model, q, r, targets, 1.0, w_align, bf16=True)  # a step with both losses
    loss.backward()
    model.zero_grad(set_to_none=True)
    t1 = time.perf_counter()
    ids, mask = pad(q, tok.pad_token_id, side="left")
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        model.compression_states(ids, mask, split_prefix=False)  # the query pass (+ the special tokens)
    t2 = time.perf_counter()
    if b:
        step_s.append(t1 - t0)
        query_s.append(t2 - t1)

lm_cfg = backbone.model.config
head_dim = getattr(lm_cfg, "head_dim", None) or lm_cfg.hidden_size // lm_cfg.num_attention_heads
all_q = prompt_ids(tok, [r["query"] for r in rows], instruction, cfg.max_query_tokens)
head = next(iter(model.prefix_cache.entries))[0]
tokens = sum(len(x) - len(head) for x in all_q)
kv_bytes = tokens * lm_cfg.num_hidden_layers * 2 * lm_cfg.num_key_value_heads * head_dim * 2  # bf16
step, query = float(np.median(step_s)), float(np.median(query_s))
print(f"median over {batches} batches of {cfg.batch_size} (bf16, {torch.get_num_threads()} threads):")
print(f"  training step: {step:.2f} s | frozen query pass alone: {query:.2f} s ({100 * query / step:.0f}% of a step)")
print(f"  {len(rows)} queries, {tokens / len(rows):.0f} tokens each after the shared head: keeping their "
      f"keys/values (bf16) takes {kv_bytes / 2**30:.1f} GiB")
epochs = cfg.steps * cfg.batch_size / len(rows)
print(f"  at {epochs:.1f} epochs, reusing them saves at most {100 * query / step * (1 - 1 / epochs):.0f}% of training time")
