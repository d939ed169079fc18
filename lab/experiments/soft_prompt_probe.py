"""Does a checkpoint's soft prompt carry its input? Reconstruction cross-entropy of each training
response given its own soft prompt, another row's, and the batch-mean prompt, plus the cosine
between two inputs' prompts. Equal losses mean the decoder sees no input-specific content.

    .venv/bin/python lab/experiments/soft_prompt_probe.py [CHECKPOINT] [RESPONSES_JSONL] [N]
"""
import sys

import torch

import genembed
from genembed.inputs import pad, prompt_ids, response_ids
from genembed.jsonl import read_rows
from genembed.losses import reconstruction_loss

checkpoint = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] != "default" else None
responses = sys.argv[2] if len(sys.argv) > 2 else "runs/default/train.jsonl"
n = int(sys.argv[3]) if len(sys.argv) > 3 else 6
model = genembed.load(checkpoint)
tok = model.backbone.tokenizer
rows = read_rows(responses)[:n]
q_ids, q_mask = pad(prompt_ids(tok, [r["query"] for r in rows], model.resolve_instruction("query"),
                               model.config.max_text_tokens), tok.pad_token_id, "left")
r_ids, r_mask = pad(response_ids(tok, [r["response"] for r in rows], 64), tok.pad_token_id, "right")
with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
    soft, _ = model(q_ids, q_mask)
    own = reconstruction_loss(model.backbone.model, soft, r_ids, r_mask).item()
    other = reconstruction_loss(model.backbone.model, soft.roll(1, 0), r_ids, r_mask).item()
    mean = reconstruction_loss(model.backbone.model, soft.mean(0, keepdim=True).expand_as(soft), r_ids, r_mask).item()
cos = torch.nn.functional.cosine_similarity(soft[0].flatten(), soft[1].flatten(), dim=0).item()
print(f"reconstruction CE on {n} rows: own prompt {own:.3f} | another row's {other:.3f} | batch-mean prompt {mean:.3f}")
print(f"cosine between the soft prompts of rows 0 and 1: {cos:.3f}")
