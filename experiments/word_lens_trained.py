"""Word lens trained by reconstruction: can the reconstruction loss pick better words than cosine?

Each of K request slots is a soft mix over the embedding's M nearest words (teacher space) of
their token embeddings; slot j's logits are cos(A e, word) / tau plus a learned bias per rank,
started so that slot j is the j-th nearest word (the untrained lens). A (teacher dim², identity at
start), the rank biases and tau train on reconstruction of the training answers through the
frozen LLM, which reads "Write about:" then the K slots in its chat template. Scored on the
decoding task's first N held-out queries before and after (slots read as their argmax words for
decoding, as soft mixes for the cross-entropies).
usage: python experiments/word_lens_trained.py [--steps 150] [--n 120] [--w-margin 1]
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

import genembed
from genembed.eval import decoding as D
from genembed.inputs import pad, response_ids
from genembed.jsonl import read_rows
from genembed.losses import margin_loss, reconstruction_loss
from word_lens_frame import decoded_retrieval, word_table


class SoftLens(torch.nn.Module):
    def __init__(self, vec, ids, embed, k=10, m=64, tau=0.02):
        super().__init__()
        self.vec, self.ids, self.embed, self.k, self.m = vec.float(), ids, embed, k, m
        d = vec.shape[1]
        self.a = torch.nn.Linear(d, d)
        with torch.no_grad():
            self.a.weight.copy_(torch.eye(d))
            self.a.bias.zero_()
        self.rank_bias = torch.nn.Parameter(torch.zeros(k, m))
        with torch.no_grad():
            self.rank_bias[torch.arange(k), torch.arange(k)] = 5.0  # slot j starts on the j-th nearest word
        self.log_tau = torch.nn.Parameter(torch.tensor(tau).log())

    def forward(self, e):
        """[B, K, hidden] slot embeddings, and [B, K] argmax token ids."""
        q = F.normalize(self.a(e), dim=-1)
        cos = q @ self.vec.T
        top = cos.topk(self.m, dim=-1)  # candidates, nearest first
        logits = top.values[:, None, :] / self.log_tau.exp() + self.rank_bias[None]
        p = logits.softmax(-1)  # [B, K, M]
        cand = self.ids[top.indices]  # [B, M] token ids
        slots = p @ self.embed(cand).float()
        return slots, cand.gather(1, p.argmax(-1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", default="runs/default/train.jsonl")
    ap.add_argument("--rows", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--n", type=int, default=120)
    ap.add_argument("--w-margin", type=float, default=0.0,
                    help="weight of a hinge: each answer read 0.5 nats per token better from its own request than "
                         "from the next row's (0: plain reconstruction)")
    args = ap.parse_args()
    torch.manual_seed(0)
    m = genembed.load()
    m.config.prompt_frame = "chat"
    tok, lm = m.backbone.tokenizer, m.backbone.model
    embed = lm.get_input_embeddings()
    task = D.sharegpt_decoding()
    task.cache_dir = "runs/eval-default/cache"
    teacher = task.teacher(m.config.teacher)
    ids, vec = word_table(tok, teacher)
    lens = SoftLens(vec, ids, embed)
    frame = embed(torch.tensor(tok("Write about:", add_special_tokens=False)["input_ids"])).detach().float()[None]
    queries = task.queries[: args.n]
    answers = response_ids(tok, task.answers(m.backbone)[: args.n], D.RESPONSE_TOKENS)
    held = torch.from_numpy(m.encode(queries, instruction=task.query_instruction, bf16=True))
    rows = [r for r in read_rows(args.train) if r["response"].strip()][: args.rows]
    train_e = torch.from_numpy(m.encode([r["query"] for r in rows], instruction="query", bf16=True))
    train_r = response_ids(tok, [r["response"] for r in rows], D.RESPONSE_TOKENS)

    def prompts(e):
        slots, hard = lens(e)
        return torch.cat([frame.expand(len(e), -1, -1), slots], dim=1), hard

    def score(tag):
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            soft, hard = prompts(held)
            ce = {key: D._batched_ce(lm, m.decoder_input(p), answers, tok.pad_token_id, 16)
                  for key, p in (("own", soft), ("other", soft.roll(1, 0)))}
            hard_p = torch.cat([frame.expand(len(hard), -1, -1), embed(hard).float()], dim=1)
        ret, texts = decoded_retrieval(m, hard_p, queries, task, teacher)
        print(tag, {k: round(v, 3) for k, v in ce.items()}, "gap other", round(ce["other"] - ce["own"], 3),
              {k: round(v, 3) for k, v in ret.items()}, flush=True)
        for i in range(0, args.n, args.n // 3):
            print("  Q:", queries[i][:70].replace("\n", " "), "| words:", tok.decode(hard[i]),
                  "\n    D:", texts[i][:120].replace("\n", " "), flush=True)

    score("step 0")
    opt = torch.optim.AdamW(lens.parameters(), lr=args.lr, weight_decay=0)
    g = torch.Generator().manual_seed(0)
    t0 = time.time()
    for step in range(args.steps):
        idx = torch.randint(0, len(rows), (8,), generator=g)
        r_ids, r_mask = pad([train_r[i] for i in idx], tok.pad_token_id, side="right")
        with torch.autocast("cpu", dtype=torch.bfloat16):
            soft = m.decoder_input(prompts(train_e[idx])[0])
            if args.w_margin:
                own = reconstruction_loss(lm, soft, r_ids, r_mask, per_row=True)
                other = reconstruction_loss(lm, soft.roll(1, 0), r_ids, r_mask, per_row=True)
                loss = own.mean() + args.w_margin * margin_loss(own, other, 0.5)
            else:
                loss = reconstruction_loss(lm, soft, r_ids, r_mask)
        loss.backward()
        opt.step()
        opt.zero_grad()
        if step % 25 == 0:
            print(f"  step {step} loss {loss.item():.3f} tau {lens.log_tau.exp().item():.4f} ({time.time() - t0:.0f} s)",
                  flush=True)
    score(f"step {args.steps}")


if __name__ == "__main__":
    main()
