"""Decode by search: several requests per embedding, keep the answer the teacher puts nearest it.

The word lens (genembed/word_lens.py) finds an embedding's topic but not its task: single words
cannot say "write five emails" or "fix this code". The embedding can, in its way: it sits where the
teacher puts a whole *answer*, and answers of different tasks (code, an email, a story) land apart.
So: write each embedding's nearest words into several request forms, let the frozen LLM answer
every one, embed the answers with the teacher and keep the one nearest the embedding. Only the
embedding, the teacher and the LLM take part (no query, no answer), as in the plain lens.
Scored like the decoding task (genembed/eval/decoding.py), on the first --n held-out queries:
the chosen request is the prompt whose answer cross-entropy is measured.
usage: python lab/experiments/word_lens_search.py [--n 120] [--forms 4] [--words 10] [--screen-tokens 48]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from genembed.decoders import answer_cross_entropy
from genembed.eval import decoding as D
from genembed.generate import generate_texts
from genembed.inputs import prompt_ids, response_ids
from genembed.query_lens import ABOUT
from genembed.word_lens import REQUEST, WordLens, request_ids

from word_lens_probe import TASK_FORMS, held_out_setup


def candidates(lens, forms_vectors, emb, n_forms: int, k: int, bank=None, n_queries: int = 0,
               about: bool = False) -> list[list[str]]:
    """Per embedding: "Write about …." and the n_forms task forms nearest it, each holding its k words,
    then the n_queries training queries nearest it (bank: (their unit vectors, their texts)), each
    followed by the words where `about` (the query lens's request, genembed/query_lens.py)."""
    words = [", ".join(w for w, _ in row) for row in lens.nearest(emb, k)]
    near = np.argsort(-(emb @ forms_vectors.T), axis=1)[:, :n_forms]
    out = [[REQUEST.format(w)] + [TASK_FORMS[j].format(w) for j in row] for w, row in zip(words, near)]
    if n_queries:
        vectors, texts = bank
        for row, w, nearest in zip(out, words, np.argsort(-(emb @ vectors.T), axis=1)[:, :n_queries]):
            row += [ABOUT.format(query=texts[j], words=w) if about else texts[j] for j in nearest]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--n", type=int, default=120)
    ap.add_argument("--forms", type=int, default=4, help="task forms tried beside 'Write about' (0: the plain lens)")
    ap.add_argument("--words", type=int, default=10)
    ap.add_argument("--queries", type=int, default=0, help="also try the N nearest training queries (query_lens_probe)")
    ap.add_argument("--train", default="runs/default/train.jsonl")
    ap.add_argument("--about", action="store_true", help="each training query is followed by the words")
    ap.add_argument("--screen-tokens", type=int, default=D.DECODE_TOKENS,
                    help="tokens generated per candidate to choose by; the chosen one is then decoded in full")
    args = ap.parse_args()
    m, task, teacher = held_out_setup(args.model)
    tok = m.backbone.tokenizer
    lens = WordLens.for_model(m)
    forms = teacher.embed([f.replace(" {}", "").replace("{}", "") for f in TASK_FORMS])
    forms = forms / np.linalg.norm(forms, axis=1, keepdims=True)
    n = args.n
    queries = task.queries[:n]
    answers = response_ids(tok, task.answers(m.backbone)[:n], D.RESPONSE_TOKENS)
    emb = m.encode(queries, instruction=task.query_instruction, batch_size=16, bf16=True, normalize=True)

    bank = None
    if args.queries:
        from query_lens_probe import bank_vectors, training_rows

        rows = training_rows(args.train)
        assert rows and not set(queries) & {r["query"] for r in rows}
        cut = [tok.decode(tok(r["query"], add_special_tokens=False).input_ids[:96]) for r in rows]
        bank = bank_vectors(m, teacher, rows, "student", Path("runs/experiments/query-lens")), cut
    t0 = time.time()
    options = candidates(lens, forms, emb, args.forms, args.words, bank, args.queries, args.about)
    flat = [r for row in options for r in row]
    texts = generate_texts(m.backbone, request_ids(tok, flat), args.screen_tokens, batch_size=16, bf16=True)
    vecs = teacher.embed([t if t.strip() else "." for t in texts])
    vecs = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    per = len(options[0])
    scores = np.einsum("ncd,nd->nc", vecs.reshape(n, per, -1), emb)
    pick = scores.argmax(1)
    own = [row[j] for row, j in zip(options, pick)]
    if args.screen_tokens == D.DECODE_TOKENS:
        decoded = [texts[i * per + j] for i, j in enumerate(pick)]
    else:
        decoded = generate_texts(m.backbone, request_ids(tok, own), D.DECODE_TOKENS, batch_size=16, bf16=True)
    seconds = time.time() - t0
    plain = [texts[i * per] for i in range(n)]  # the plain lens's decode, from the same run

    mean_request = candidates(lens, forms, emb.mean(0, keepdims=True), 0, args.words)[0][0]
    chats = {key: prompt_ids(tok, w, max_text_tokens=512) for key, w in
             (("own", own), ("other", own[1:] + own[:1]), ("mean", [mean_request] * n),
              ("plain own", [row[0] for row in options]), ("plain other", [row[0] for row in options[1:] + options[:1]]))}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ce = {key: answer_cross_entropy(m.backbone, v, answers, 16) for key, v in chats.items()}
    sub = D.DecodingTask("sub", queries, task.corpus, task.relevant[:n])
    ret, ret_plain = D._retrieval(sub, teacher, decoded), D._retrieval(sub, teacher, plain)
    chosen = np.bincount(pick, minlength=per)
    print(f"forms {args.forms} queries {args.queries} about {args.about} bank {args.train} words {args.words} screen tokens {args.screen_tokens}: {seconds:.0f} s of decoding",
          {"gap other": round(ce["other"] - ce["own"], 3), "gap mean": round(ce["mean"] - ce["own"], 3),
           "plain gap other": round(ce["plain other"] - ce["plain own"], 3),
           **{k: round(v, 3) for k, v in ret.items()}, **{f"plain {k}": round(v, 3) for k, v in ret_plain.items()},
           "distinct": len(set(decoded)) / n, "chosen per slot": chosen.tolist()}, flush=True)
    for i in range(0, n, max(1, n // 4)):
        print("  Q:", queries[i][:90].replace("\n", " "), "\n    P:", own[i], "\n    D:", decoded[i][:150].replace("\n", " "))


if __name__ == "__main__":
    main()
