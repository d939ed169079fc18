"""Word lens with a trained frame: does reconstruction teach the frozen LLM to answer from the words?

The prompt the LLM reads (in its chat template's user turn) is P frame vectors, then the input
embeddings of the k vocabulary words nearest to the text's embedding in the teacher's space (one
token each, one form per word). The frame starts as the embeddings of a written instruction and
trains on reconstruction of the training responses (the backbone and the words stay fixed).
Scored before and after on the decoding task's held-out queries, as genembed/eval/decoding.py does.
usage: python experiments/word_lens_frame.py [--model M] [--steps 150] [--k 10] [--n 120]
"""
from __future__ import annotations

import argparse
import time

import torch

import genembed
from genembed.eval import decoding as D
from genembed.inputs import pad, response_ids
from genembed.jsonl import read_rows
from genembed.losses import reconstruction_loss


def word_table(tok, teacher):
    """(token ids, unit teacher vectors) of the vocabulary's whole words, as the library's word lens has them."""
    from genembed.word_lens import vocabulary_words, word_vectors

    words, ids = vocabulary_words(tok)
    return torch.tensor(ids), torch.from_numpy(word_vectors(teacher, words))


def nearest_words(emb, ids, vec, k):
    return ids[(torch.from_numpy(emb).float() @ vec.float().T).topk(k, dim=-1).indices]


def decoded_retrieval(m, prompts, queries, task, teacher):
    """Greedy text from each prompt (input embeddings, read in the model's frame) and the decoding
    task's retrieval scores of those texts on the first len(queries) queries: (scores, texts)."""
    tok = m.backbone.tokenizer
    texts = []
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        for s in range(0, len(prompts), 16):
            texts += [tok.decode(r, skip_special_tokens=True).strip()
                      for r in m.generate_from_soft_prompt(prompts[s:s + 16], D.DECODE_TOKENS)]
    sub = D.DecodingTask("sub", queries, task.corpus, task.relevant[: len(queries)])
    return D._retrieval(sub, teacher, texts), texts


def score(m, frame, word_ids, answers, queries, task, teacher):
    embed = m.backbone.model.get_input_embeddings()
    prompts = torch.cat([frame.expand(len(word_ids), -1, -1), embed(word_ids).float()], dim=1)
    lm, tok = m.backbone.model, m.backbone.tokenizer
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        ce = {key: D._batched_ce(lm, m.decoder_input(p), answers, tok.pad_token_id, 16)
              for key, p in (("own", prompts), ("other", prompts.roll(1, 0)))}
    ret, texts = decoded_retrieval(m, prompts, queries, task, teacher)
    return {**{key: round(v, 3) for key, v in ce.items()}, "gap other": round(ce["other"] - ce["own"], 3),
            **{key: round(v, 3) for key, v in ret.items()}}, texts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--train", default="runs/default/train.jsonl")
    ap.add_argument("--rows", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--n", type=int, default=120)
    ap.add_argument("--frame", default="Write about:")
    args = ap.parse_args()
    torch.manual_seed(0)
    m = genembed.load(args.model)
    m.config.prompt_frame = "chat"
    tok, lm = m.backbone.tokenizer, m.backbone.model
    task = D.sharegpt_decoding()
    task.cache_dir = "runs/eval-default/cache"
    teacher = task.teacher(m.config.teacher)
    t0 = time.time()
    ids, vec = word_table(tok, teacher)
    print(f"{len(ids)} words in {time.time() - t0:.0f} s", flush=True)
    queries = task.queries[: args.n]
    answers = response_ids(tok, task.answers(m.backbone)[: args.n], D.RESPONSE_TOKENS)
    held_words = nearest_words(m.encode(queries, instruction=task.query_instruction, bf16=True, normalize=True),
                               ids, vec, args.k)
    rows = [r for r in read_rows(args.train) if r["response"].strip()][: args.rows]
    train_words = nearest_words(m.encode([r["query"] for r in rows], instruction="query", bf16=True, normalize=True),
                                ids, vec, args.k)
    train_resp = response_ids(tok, [r["response"] for r in rows], D.RESPONSE_TOKENS)
    embed = lm.get_input_embeddings()
    frame = torch.nn.Parameter(embed(torch.tensor(tok(args.frame, add_special_tokens=False)["input_ids"]))
                               .detach().float()[None])
    before, texts = score(m, frame.detach(), held_words, answers, queries, task, teacher)
    print("step 0", before, flush=True)
    for i in range(0, args.n, args.n // 4):
        print("  Q:", queries[i][:80].replace("\n", " "), "| words:", tok.decode(held_words[i]),
              "\n    D:", texts[i][:140].replace("\n", " "), flush=True)
    opt = torch.optim.AdamW([frame], lr=args.lr, weight_decay=0)
    g = torch.Generator().manual_seed(0)
    t0 = time.time()
    for step in range(args.steps):
        idx = torch.randint(0, len(rows), (8,), generator=g)
        r_ids, r_mask = pad([train_resp[i] for i in idx], tok.pad_token_id, side="right")
        with torch.autocast("cpu", dtype=torch.bfloat16):
            prompt = torch.cat([frame.expand(8, -1, -1), embed(train_words[idx]).detach().float()], dim=1)
            loss = reconstruction_loss(lm, m.decoder_input(prompt), r_ids, r_mask)
        loss.backward()
        opt.step()
        opt.zero_grad()
        if step % 25 == 0:
            print(f"  step {step} loss {loss.item():.3f} ({time.time() - t0:.0f} s)", flush=True)
    after, texts = score(m, frame.detach(), held_words, answers, queries, task, teacher)
    print(f"step {args.steps}", after, flush=True)
    for i in range(0, args.n, args.n // 4):
        print("  Q:", queries[i][:80].replace("\n", " "), "\n    D:", texts[i][:140].replace("\n", " "), flush=True)


if __name__ == "__main__":
    main()
