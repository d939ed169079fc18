"""Can an embedding be read through the teacher's own word space? A screen, no training.

The student's embedding lives in the teacher's space (alignment). Each whole-word token of the
backbone's vocabulary is embedded by the teacher once; an embedding's K nearest words, written
as the user's message of the backbone's chat template, are what the frozen LLM reads. Scored as
the decoding task scores a student (genembed/eval/decoding.py): answer cross-entropy under the own
words / another query's words / the words nearest the mean embedding, and decoded-text retrieval.
usage: python lab/experiments/word_lens_probe.py [--model M] [--n 120] [--k 10]
"""
from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

import numpy as np
import torch

import genembed
from genembed.decoders import answer_cross_entropy
from genembed.eval import decoding as D
from genembed.inputs import prompt_ids, response_ids


def word_vocabulary(tok, min_chars: int = 3) -> tuple[list[int], list[str]]:
    """Token ids of the vocabulary's whole words (a leading space, letters only) and their text."""
    ids, words = [], []
    for i in range(len(tok)):
        text = tok.decode([i])
        if text.startswith(" ") and re.fullmatch(r"[A-Za-z]+", text[1:]) and len(text) > min_chars:
            ids.append(i)
            words.append(text[1:])
    return ids, words


STOP = set("the a an and or of to in on for with is are be this that it as at by from your you my i we our "
           "can could would should will do does how what which who why when where me please write".split())


def training_phrases(path, min_count):
    """Lower-cased 2-3 word phrases seen at least min_count times in the training queries and answers,
    neither starting nor ending with a stop word."""
    from collections import Counter

    from genembed.jsonl import read_rows

    counts = Counter()
    for r in read_rows(path):
        for text in (r["query"], r["response"]):
            toks = re.findall(r"[a-z][a-z0-9+#.-]*[a-z0-9+#]|[a-z]", text.lower())
            for n in (2, 3):
                for i in range(len(toks) - n + 1):
                    gram = toks[i:i + n]
                    if gram[0] not in STOP and gram[-1] not in STOP:
                        counts[" ".join(gram)] += 1
    return sorted(g for g, c in counts.items() if c >= min_count)


def fitted_lens(m, args, wv, lower):
    """A linear map (identity at start) that re-aims embeddings at the words of their own query in the
    teacher's word space: fitted on training queries only (self-supervised: the query's words are the
    labels), softmax over the word table with a learned temperature. Returns the map (numpy in/out)."""
    from genembed.jsonl import read_rows

    rows = [r for r in read_rows(args.train) if r["query"].strip()][: args.fit_rows]
    x = torch.from_numpy(m.encode([r["query"] for r in rows], instruction="query", batch_size=16, bf16=True,
                                  normalize=True)).float()
    where: dict[str, list[int]] = {}
    for i, w in enumerate(lower):
        where.setdefault(w, []).append(i)
    bags = [sorted({i for w in re.findall(r"[A-Za-z]{3,}", r["query"]) for i in where.get(w.lower(), [])})
            for r in rows]
    df = torch.zeros(len(lower))
    for b in bags:
        df[b] += 1
    idf = (len(bags) / df.clamp(min=1)).log()
    common = df > args.max_df * len(bags)  # words in many queries say little about one: not targets
    bags = [[i for i in b if not common[i]] for b in bags]
    keep = [i for i, b in enumerate(bags) if b]
    x, bags = x[keep], [bags[i] for i in keep]
    target = torch.zeros(len(bags), len(lower))
    for i, b in enumerate(bags):  # rarer words weigh more (idf)
        target[i, b] = idf[b] / idf[b].sum()
    w = torch.from_numpy(wv).float()
    lin = torch.nn.Linear(x.shape[1], x.shape[1])
    with torch.no_grad():
        lin.weight.copy_(torch.eye(x.shape[1]))
        lin.bias.zero_()
    log_tau = torch.nn.Parameter(torch.tensor(0.05).log())
    opt = torch.optim.Adam([*lin.parameters(), log_tau], lr=args.fit_lr)
    cut = len(x) * 9 // 10  # the last tenth checks the fit on queries it did not see
    g = torch.Generator().manual_seed(0)

    def loss_of(rows):
        logits = torch.nn.functional.normalize(lin(x[rows]), dim=-1) @ w.T / log_tau.exp()
        return -(target[rows] * logits.log_softmax(-1)).sum(-1).mean()

    for step in range(args.fit_steps + 1):
        if step % 100 == 0:
            with torch.no_grad():
                print(f"  lens fit step {step}: train {loss_of(torch.arange(0, cut, 4)):.3f} unseen "
                      f"{loss_of(torch.arange(cut, len(x))):.3f} tau {log_tau.exp().item():.3f}", flush=True)
        opt.zero_grad()
        loss_of(torch.randint(0, cut, (128,), generator=g)).backward()
        opt.step()
    return lambda e: torch.nn.functional.normalize(lin(torch.from_numpy(e).float()), dim=-1).detach().numpy()


TASK_FORMS = [
    "Write an email about {}.", "Write Python code for {}.", "Write code for {}.", "Explain {}.",
    "Write a story about {}.", "Write a poem about {}.", "Summarize {}.", "List ideas about {}.",
    "Write an essay about {}.", "Write an article about {}.", "Give step-by-step instructions for {}.",
    "Translate {}.", "Write a marketing text about {}.", "Write a lesson plan about {}.", "Answer a question about {}.",
    "Write a letter about {}.", "Write a social media post about {}.", "Write a SQL query for {}.",
    "Write a JavaScript function for {}.", "Compare {}.", "Give advice on {}.", "Write a script about {}.",
    "Rewrite a text about {}.", "Write a product description of {}.", "Create a table about {}.",
    "Write a song about {}.", "Write a speech about {}.", "Describe {}.", "Define {}.", "Write a report on {}.",
]


def held_out_setup(model_path):
    """The model, the decoding task of `genembed eval` (the backbone's answers cached where it keeps
    them) and the model's teacher."""
    m = genembed.load(model_path)
    task = D.sharegpt_decoding()
    task.cache_dir = "runs/eval-default/cache"
    return m, task, task.teacher(m.config.teacher)


FRAMES = {"plain": "{}", "about": "Write about {}.", "topic": "Topic: {}", "semi": "Write about: {}."}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--n", type=int, default=120)
    ap.add_argument("--variants", default="10:0:plain", help="k:centre:frame,...: k words nearest to (embedding - "
                    "centre x mean embedding), written in a frame of FRAMES")
    ap.add_argument("--fit-rows", type=int, default=0, help="fit a word lens on this many training queries (0: none)")
    ap.add_argument("--fit-steps", type=int, default=300)
    ap.add_argument("--fit-lr", type=float, default=1e-3)
    ap.add_argument("--max-df", type=float, default=0.02, help="words in more than this share of queries are no target")
    ap.add_argument("--train", default="runs/default/train.jsonl")
    ap.add_argument("--phrases", type=int, default=0, help="use training phrases seen this many times (0: words)")
    args = ap.parse_args()
    m, task, teacher = held_out_setup(args.model)
    tok = m.backbone.tokenizer
    t0 = time.time()
    ids, words = word_vocabulary(tok)
    wv = teacher.embed(words, batch_size=256)
    wv = wv / np.linalg.norm(wv, axis=1, keepdims=True)
    print(f"{len(words)} words embedded by the teacher in {time.time() - t0:.0f} s", flush=True)
    n = args.n
    queries = task.queries[:n]
    answers = response_ids(tok, task.answers(m.backbone)[:n], D.RESPONSE_TOKENS)
    emb = m.encode(queries, instruction=task.query_instruction, batch_size=16, bf16=True, normalize=True)
    if args.phrases:  # the lens's vocabulary: frequent 2-3 word phrases of the training rows instead
        words = training_phrases(args.train, args.phrases)
        wv = teacher.embed(words, batch_size=256)
        wv = wv / np.linalg.norm(wv, axis=1, keepdims=True)
        print(f"{len(words)} phrases, e.g. {words[:5]}", flush=True)
    lower = np.array([w.lower() for w in words])
    if args.fit_rows:
        emb = fitted_lens(m, args, wv, lower)(emb)
    for variant in args.variants.split(","):
        k, center, frame = variant.split(":")
        k, center = int(k), float(center)

        def words_of(e):
            e = e - center * emb.mean(0, keepdims=True)
            out = []
            for row in np.argsort(-(e @ wv.T), axis=1)[:, :200]:
                picked = list(dict.fromkeys(lower[row]))[:k]  # one form per word (Battle / battle)
                out.append(FRAMES[frame].format(", ".join(picked)) if frame != "task" else ", ".join(picked))
            if frame == "task":  # the task form nearest the embedding, in the teacher's space, holds the words
                forms = teacher.embed([f.replace(" {}", "").replace("{}", "") for f in TASK_FORMS])
                forms = forms / np.linalg.norm(forms, axis=1, keepdims=True)
                pick = (e @ forms.T).argmax(1)
                out = [TASK_FORMS[j].format(w) for j, w in zip(pick, out)]
            return out

        own, mean_words = words_of(emb), words_of(emb.mean(0, keepdims=True)) * n
        if center < 0:  # the oracle: the query's own first k distinct long words (what a perfect lens could give)
            own = [FRAMES[frame].format(", ".join(list(dict.fromkeys(w.lower() for w in re.findall(r"[A-Za-z]{4,}", q)))[:k]))
                   for q in queries]
        chats = {key: prompt_ids(tok, w, max_text_tokens=96) for key, w in
                 (("own", own), ("other", own[1:] + own[:1]), ("mean", mean_words))}
        with torch.autocast("cpu", dtype=torch.bfloat16):
            ce = {key: answer_cross_entropy(m.backbone, v, answers, 16) for key, v in chats.items()}
        from genembed.generate import answer_queries  # greedy answers to the word prompts, the backbone's way

        path = Path("runs/word-lens-answers.jsonl")
        path.unlink(missing_ok=True)  # answers of this variant only
        rows = answer_queries(m.backbone, [(str(i), w) for i, w in enumerate(own)], path,
                              max_new_tokens=D.DECODE_TOKENS, batch_size=16, bf16=True, show_progress_bar=False)
        by_id = {r["id"]: r["response"] for r in rows}
        texts = [by_id[str(i)] for i in range(n)]
        sub = D.DecodingTask("sub", queries, task.corpus, task.relevant[:n])
        ret = D._retrieval(sub, teacher, texts)
        print(variant, {**{key: round(v, 3) for key, v in ce.items()}, "gap other": round(ce["other"] - ce["own"], 3),
                        "gap mean": round(ce["mean"] - ce["own"], 3), **{key: round(v, 3) for key, v in ret.items()}},
              flush=True)
        for i in range(0, n, n // 3):
            print("  Q:", queries[i][:90].replace("\n", " "), "\n    P:", own[i], "\n    D:", texts[i][:150].replace("\n", " "))


if __name__ == "__main__":
    main()
