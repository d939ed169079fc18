"""Which layer of the frozen backbone holds the most of the alignment target? A linear probe per layer.

For each layer of the backbone, a ridge readout (genembed.ridge) to the training targets from the mean
state of the C compression tokens, and beside it from the mean over the text's own tokens (every layer
through the final norm). Fit on the first rows, scored on the held-out rest: R², mean cosine, and top-1
retrieval of each held-out target among all held-out targets. Then the last layer's compression tokens and
each layer's text mean together (their states side by side, one readout). The method reads the last layer;
this asks whether an earlier one holds more before any training: fresh tokens, queries cut as training
cuts them.
The forward passes (8 min for 2,400 queries on 2 cores) are kept in OUT-features.npz for a rerun.

    .venv/bin/python lab/experiments/layer_probe.py --responses runs/recipes/data/train.jsonl \
        --targets runs/recipes/mixed-lr02/cache --out runs/probe/fresh
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from genembed.atomic import replace_file, write_text
from genembed.backbone import load_backbone
from genembed.generate import read_responses
from genembed.inputs import pad, positions
from genembed.model import GenEmbed
from genembed.recipe import TrainConfig
from genembed.ridge import ridge_fit
from genembed.teachers import alignment_targets, load_teacher


@torch.no_grad()
def layer_features(model: GenEmbed, rows: list[list[int]], batch_size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """([layers+1, N, hidden] mean compression-token state, [layers+1, N, hidden] mean text-token state)."""
    base = model.backbone.model.base_model
    embed = model.backbone.model.get_input_embeddings()
    c = model.config.num_compression_tokens
    comp, text_means = [], []
    for start in tqdm(range(0, len(rows), batch_size), desc="layers"):
        ids, mask = pad(rows[start:start + batch_size], model.backbone.tokenizer.pad_token_id, side="left")
        special = model.special_tokens.unsqueeze(0).expand(ids.shape[0], -1, -1)
        full = torch.cat([mask, mask.new_ones(special.shape[:2])], dim=1)
        pos = positions(full)
        out = base(inputs_embeds=torch.cat([embed(ids), special], dim=1), attention_mask=full, position_ids=pos,
                   output_hidden_states=True)
        # every layer through the final norm (the last one already is): its per-token scale is the
        # norm's, as a truncated backbone would give it
        states = torch.stack([base.norm(h) for h in out.hidden_states[:-1]] + [out.hidden_states[-1]])  # [L+1, B, S, H]
        comp.append(states[:, :, -c:].mean(2).float())
        m = mask.float()[None, :, :, None]
        text_means.append((states[:, :, : ids.shape[1]] * m).sum(2).float() / m.sum(2))
    return torch.cat(comp, 1).numpy(), torch.cat(text_means, 1).numpy()


def probe(x: np.ndarray, y: np.ndarray, n_fit: int) -> dict:
    w, b, r2_train = ridge_fit(torch.as_tensor(x[:n_fit]), torch.as_tensor(y[:n_fit]))
    pred = (torch.as_tensor(x[n_fit:]).double() @ w + b).numpy()
    true = y[n_fit:]
    r2 = 1 - ((pred - true) ** 2).sum() / ((true - true.mean(0)) ** 2).sum()
    pn = pred / np.linalg.norm(pred, axis=1, keepdims=True)
    tn = true / np.linalg.norm(true, axis=1, keepdims=True)
    cos = (pn * tn).sum(1)
    top1 = float(((pn @ tn.T).argmax(1) == np.arange(len(tn))).mean())
    return {"train_r2": round(r2_train, 4), "heldout_r2": round(float(r2), 4), "heldout_cos": round(float(cos.mean()), 4),
            "heldout_top1": round(top1, 4)}


def save_npz(path: Path, **arrays) -> None:
    with open(path, "wb") as f:  # (a file object: np.savez would add ".npz" to the temporary path)
        np.savez(f, **arrays)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--responses", required=True)
    ap.add_argument("--targets", required=True, help="a run's cache folder (the targets are read, or computed there)")
    ap.add_argument("--target", default="query+response")
    ap.add_argument("--limit", type=int, default=2400)
    ap.add_argument("--heldout", type=int, default=500)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    rows = read_responses(a.responses)[: a.limit]
    backbone = load_backbone("smollm2-135m-instruct")
    teacher = load_teacher("all-minilm-l6-v2", backbone)
    y = alignment_targets(teacher, [r["query"] for r in rows], [r["response"] for r in rows], a.target, a.targets)
    model = GenEmbed.create(backbone, embedding_dim=teacher.dim, teacher=teacher.name, seed=0,
                            max_text_tokens=TrainConfig.max_query_tokens)
    ids = model.token_rows([r["query"] for r in rows], model.resolve_instruction(None))
    feats = Path(a.out + "-features.npz")
    if feats.exists():  # (the forward passes are the slow part: kept to redo the probe)
        with np.load(feats) as saved:
            comp, text = saved["comp"], saved["text"]
    else:
        comp, text = layer_features(model, ids)
        replace_file(feats, lambda p: save_npz(p, comp=comp, text=text))  # whole or not at all: reused when it exists
    n_fit = len(rows) - a.heldout
    table = []
    for layer in range(comp.shape[0]):
        # layer 0 of the special tokens is their input embedding, the same for every row: nothing to fit
        table.append({"layer": layer,
                      "compression": probe(comp[layer], y, n_fit) if layer else None, "text_mean": probe(text[layer], y, n_fit)})
        print(json.dumps(table[-1]), flush=True)
    # the last layer's compression tokens together with the text mean of each layer: does the text add?
    both = []
    for layer in range(comp.shape[0]):
        both.append({"layer": layer, "compression_last_and_text_mean": probe(np.concatenate([comp[-1], text[layer]], 1), y, n_fit)})
        print(json.dumps(both[-1]), flush=True)
    write_text(a.out + ".json", json.dumps({"args": vars(a), "layers": table, "with_text": both}, indent=1) + "\n")


if __name__ == "__main__":
    main()
