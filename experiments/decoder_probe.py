"""Which `recon` form lets the frozen LLM read input-specific content from compression states?

A fast screen, not a training run: the special tokens and `align` of a trained checkpoint stay
fixed, its compression states for N (query, response) rows are computed once, and only a fresh
`recon` variant trains, on reconstruction (optionally with a margin against another row's prompt).
Held-out rows then give the response cross-entropy under the own prompt, another row's prompt and
the batch-mean prompt.   usage: python experiments/decoder_probe.py RESPONSES.jsonl [--variants a,b]
"""
from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F

import genembed
from genembed.inputs import pad, response_ids
from genembed.jsonl import read_rows
from genembed.losses import margin_loss, reconstruction_loss


class Linear(torch.nn.Module):  # the paper's recon: hidden -> hidden, identity at start
    def __init__(self, h, mu, emb):
        super().__init__()
        self.lin = torch.nn.Linear(h.shape[-1], h.shape[-1])
        with torch.no_grad():
            self.lin.weight.copy_(torch.eye(h.shape[-1]))
            self.lin.bias.zero_()

    def forward(self, x):
        return self.lin(x)


class Centered(torch.nn.Module):
    """prompt = mean prompt + gain * W (h - mean state): the shared part kept, deviations amplified."""
    def __init__(self, h, mu, emb, gain=3.0):
        super().__init__()
        self.register_buffer("mu", mu)
        self.base = torch.nn.Parameter(mu.clone())
        self.lin = torch.nn.Linear(h.shape[-1], h.shape[-1], bias=False)
        with torch.no_grad():
            self.lin.weight.copy_(torch.eye(h.shape[-1]) * gain)

    def forward(self, x):
        return self.base + self.lin(x - self.mu)


class TokenSpace(torch.nn.Module):
    """prompt at the token embeddings' scale: mean token embedding + W (h - mean)/scale."""
    def __init__(self, h, mu, emb, rel=1.0):
        super().__init__()
        self.register_buffer("mu", mu)
        dev = (h - mu).norm(dim=-1).mean()
        self.scale = float(dev)
        tok = emb.mean(0)
        self.base = torch.nn.Parameter(tok.expand_as(mu).clone())
        self.lin = torch.nn.Linear(h.shape[-1], h.shape[-1], bias=False)
        with torch.no_grad():  # orthogonal, so deviations keep their geometry at the token norm
            q, _ = torch.linalg.qr(torch.randn(h.shape[-1], h.shape[-1], generator=torch.Generator().manual_seed(0)))
            self.lin.weight.copy_(q * rel * emb.norm(dim=-1).mean())

    def forward(self, x):
        return self.base + self.lin((x - self.mu) / self.scale)


class BagOfWords(TokenSpace):
    """TokenSpace started by least squares: prompt position c ≈ the mean token embedding of the c-th
    of C chunks of the response (the LLM starts out reading a blurred copy of the answer's words)."""
    def __init__(self, h, mu, emb, chunk_means):
        super().__init__(h, mu, emb)
        from genembed.ridge import ridge_fit

        x = ((h - mu) / self.scale).flatten(0, 1)
        w, b, r2 = ridge_fit(x, chunk_means.flatten(0, 1), shrinkage=1.0)
        print(f"  bag-of-words ridge: train R² {r2:.3f}", flush=True)
        with torch.no_grad():
            self.lin.weight.copy_(w.T.float())
            self.base.copy_(chunk_means.mean(0) + 0 * b.float())


def chunk_means(resp, emb, c):
    """[N, C, hidden]: mean token embedding of each of C equal chunks of each response."""
    out = torch.zeros(len(resp), c, emb.shape[1])
    for i, ids in enumerate(resp):
        parts = torch.tensor(ids).tensor_split(c) if len(ids) >= c else [torch.tensor(ids)] * c
        for j, part in enumerate(parts):
            out[i, j] = emb[part if len(part) else torch.tensor(ids)].mean(0)
    return out


class Lexical(torch.nn.Module):
    """prompt = softmax(LM head(norm(A h))/tau) @ token embeddings: a mix of real tokens."""
    def __init__(self, h, mu, emb, lm=None, tau=1.0):
        super().__init__()
        self.lin = torch.nn.Linear(h.shape[-1], h.shape[-1])
        with torch.no_grad():
            self.lin.weight.copy_(torch.eye(h.shape[-1]))
            self.lin.bias.zero_()
        self.log_tau = torch.nn.Parameter(torch.tensor(float(tau)).log())
        object.__setattr__(self, "lm", lm)

    def forward(self, x):
        z = self.lm.base_model.norm(self.lin(x))
        p = (self.lm.get_output_embeddings()(z).float() / self.log_tau.exp()).softmax(-1)
        self.last_p = p  # [B, C, vocab], read by the bag-of-words term
        return p @ self.lm.get_input_embeddings().weight.float()


class LexicalCentered(Lexical):
    """Lexical on the states' deviations from their mean, started by least squares so that position c
    points at the mean embedding of the c-th chunk of the query's tokens (the embeddings are tied to the
    LM head here, so that vector's logits favour those tokens)."""
    def __init__(self, h, mu, emb, lm, chunk_means):
        super().__init__(h, mu, emb, lm)
        from genembed.ridge import ridge_fit

        self.register_buffer("mu", mu)
        self.scale = float((h - mu).norm(dim=-1).mean())
        x = ((h - mu) / self.scale).flatten(0, 1)
        w, b, r2 = ridge_fit(x, chunk_means.flatten(0, 1), shrinkage=1.0)
        print(f"  lexical ridge to the query's chunk embeddings: train R² {r2:.3f}", flush=True)
        with torch.no_grad():
            self.lin.weight.copy_(w.T.float())
            self.lin.bias.copy_(b.float())

    def forward(self, x):
        return super().forward((x - self.mu) / self.scale)


def bag_of_words_loss(p, bags):
    """-mean over rows of the mean log-probability, under the prompt positions' averaged token mix, of
    the row's own distinct tokens: the prompt should spell out the words of a text (query or answer)."""
    mix = p.mean(1).clamp_min(1e-9).log()
    return -torch.stack([mix[i, bag].mean() for i, bag in enumerate(bags)]).mean()


def token_bags(tok, texts):
    """Each text's distinct token ids, special tokens left out."""
    special = set(tok.all_special_ids)
    return [torch.tensor(sorted(set(tok(t, add_special_tokens=False)["input_ids"][:256]) - special) or [0])
            for t in texts]


VARIANTS = {"linear": Linear, "centered1": lambda *a: Centered(*a, gain=1.0), "centered3": Centered,
            "token": TokenSpace, "token3": lambda *a: TokenSpace(*a, rel=3.0), "lexical": None}


def ce_rows(m, prompts, r_ids, r_mask):
    """Per-row mean response cross-entropy, the prompt read in the model's frame (decoder_input)."""
    return reconstruction_loss(m.backbone.model, m.decoder_input(prompts), r_ids, r_mask, per_row=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("responses")
    ap.add_argument("--model", default=None)
    ap.add_argument("--n", type=int, default=640)
    ap.add_argument("--heldout", type=int, default=64)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--variants", default="linear,token,linear+margin,token+margin",
                    help="recon forms; a '+margin' suffix adds a hinge (weight 1): own CE + 0.5 < the next row's CE; "
                         "'+chat' puts the soft prompt in the chat template's user turn; with 'lexical', '+bowq' / '+bowr' add a "
                         "bag-of-words term (weight 1) asking the prompt's token mix to cover the query's / answer's tokens")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--layer", type=int, default=None,
                    help="take the compression tokens' states after decoder layer N (1-based) instead of the last "
                         "layer's (the 'earlier-layer states' lever)")
    args = ap.parse_args()
    torch.manual_seed(0)
    if args.threads:
        torch.set_num_threads(args.threads)
    m = genembed.load(args.model)
    lm, tok = m.backbone.model, m.backbone.tokenizer
    rows = [r for r in read_rows(args.responses) if r["response"].strip()][: args.n + args.heldout]
    t0 = time.time()
    states, captured = [], []
    hook = None
    if args.layer is not None:  # a layer's output, caught on its way through the frozen LLM
        hook = lm.base_model.layers[args.layer - 1].register_forward_hook(
            lambda mod, inp, out: captured.append(out[0] if isinstance(out, tuple) else out))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        for s in range(0, len(rows), 16):
            ids, mask = m.tokenize([r["query"] for r in rows[s:s + 16]], m.resolve_instruction("query"))
            last = m.compression_states(ids, mask, split_prefix=False).float()
            states.append(last if hook is None else captured[-1][:, -last.shape[1]:].float())
    if hook is not None:
        hook.remove()
    h = torch.cat(states)
    resp = response_ids(tok, [r["response"] for r in rows], 48)
    print(f"states of {len(rows)} rows in {time.time() - t0:.0f} s", flush=True)
    emb_norm = lm.get_input_embeddings().weight.float().norm(dim=-1).mean()
    square = h.pow(2).mean((0, 1))
    print(f"state norm {h.norm(dim=-1).mean():.1f} (a token embedding: {emb_norm:.1f}); deviation from the mean "
          f"state {(h - h.mean(0)).norm(dim=-1).mean() / h.norm(dim=-1).mean():.0%} of it; top 8 of {h.shape[-1]} "
          f"dimensions hold {square.topk(8).values.sum() / square.sum():.0%} of its square", flush=True)
    train_h, test_h = h[: args.n], h[args.n:]
    mu = train_h.mean(0)
    emb = lm.get_input_embeddings().weight.float().detach()
    test_r = pad(resp[args.n:], tok.pad_token_id, side="right")
    bags = {"bowq": token_bags(tok, [r["query"] for r in rows]), "bowr": token_bags(tok, [r["response"] for r in rows])}
    summary = []
    for variant in args.variants.split(","):
        name, *extras = variant.split("+")
        margin = 1.0 if "margin" in extras else 0.0
        bow = next((bags[e] for e in extras if e in bags), None)
        m.config.prompt_frame = "chat" if "chat" in extras else "none"  # the soft prompt as the chat's user turn
        if name == "lexical":
            recon = Lexical(train_h, mu, emb, lm)
        elif name == "lexc":
            q_ids = [tok(r["query"], add_special_tokens=False)["input_ids"][:128] or [0] for r in rows[: args.n]]
            recon = LexicalCentered(train_h, mu, emb, lm, chunk_means(q_ids, emb, train_h.shape[1]))
        elif name == "bow":
            recon = BagOfWords(train_h, mu, emb, chunk_means(resp[: args.n], emb, train_h.shape[1]))
        else:
            recon = VARIANTS[name](train_h, mu, emb)
        opt = torch.optim.AdamW([p for p in recon.parameters() if p.requires_grad], lr=args.lr, weight_decay=0)
        g = torch.Generator().manual_seed(0)
        t0 = time.time()
        for step in range(args.steps):
            idx = torch.randint(0, args.n, (8,), generator=g)
            r_ids, r_mask = pad([resp[i] for i in idx], tok.pad_token_id, side="right")
            with torch.autocast("cpu", dtype=torch.bfloat16):
                prompt = recon(train_h[idx])
                if margin:
                    ce = ce_rows(m, prompt, r_ids, r_mask)
                    other = ce_rows(m, prompt.roll(1, 0), r_ids, r_mask)
                    loss = ce.mean() + margin * margin_loss(ce, other, 0.5)
                else:
                    loss = reconstruction_loss(lm, m.decoder_input(prompt), r_ids, r_mask)
                if bow is not None:
                    loss = loss + bag_of_words_loss(recon.last_p, [bow[i] for i in idx])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(recon.parameters(), 1.0)
            opt.step()
            opt.zero_grad()
            if step % 50 == 0:
                print(f"  {name} step {step} loss {loss.item():.3f}", flush=True)
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            prompt = recon(test_h).float()
            own = ce_rows(m, prompt, *test_r).mean().item()
            other = ce_rows(m, prompt.roll(1, 0), *test_r).mean().item()
            mean = ce_rows(m, prompt.mean(0, keepdim=True).expand_as(prompt), *test_r).mean().item()
            p = F.normalize(prompt.flatten(1), dim=-1)
            cos = ((p @ p.T).sum() - len(p)) / (len(p) * (len(p) - 1))
            decoded = m.generate_from_soft_prompt(prompt[:8].to(emb.dtype), 24)
        summary.append({"variant": variant, "steps": args.steps, "ce_own": round(own, 3),
                          "ce_other": round(other, 3), "ce_mean": round(mean, 3), "gap_other": round(other - own, 3),
                          "gap_mean": round(mean - own, 3), "prompt_cos": round(cos.item(), 3),
                          "seconds": round(time.time() - t0)})
        print(json.dumps(summary[-1]), flush=True)
        if name in ("lexical", "lexc"):  # the words each held-out prompt spells, strongest per position
            top = recon.last_p[:3].argmax(-1)
            for r, t in zip(rows[args.n:args.n + 3], top):
                print("   Q:", r["query"][:60].replace("\n", " "), "| words:", tok.convert_ids_to_tokens(t.tolist()))
        for r, d in zip(rows[args.n:args.n + 3], decoded[:3]):
            print("   Q:", r["query"][:80].replace("\n", " "), "\n   D:", tok.decode(d, skip_special_tokens=True)[:120].replace("\n", " "))


    print("\n| variant | CE own | another row's prompt | mean prompt | gap other | gap mean | prompts' cos | s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in summary:
        print(f"| {r['variant']} | {r['ce_own']} | {r['ce_other']} | {r['ce_mean']} | {r['gap_other']} | "
              f"{r['gap_mean']} | {r['prompt_cos']} | {r['seconds']} |")


if __name__ == "__main__":
    main()
