"""Decodability as numbers: does the soft prompt carry *this* input, and can its text be read?

On held-out ShareGPT queries (those of the Q→A task), the backbone first answers each query
(greedy, its chat template, as training data is made; cached). Then, for a model:

* prompt specificity: mean cross-entropy per token of those answers given the query's own
  prompt, another query's prompt (the list rotated by one) and the mean prompt over all queries.
  A prompt that carries its input beats both; one that carries only "an answer follows" does not.
* decoded-text retrieval: the greedy text decoded from each query's embedding (DECODE_TOKENS),
  embedded by the teacher, ranks the real held-out answers: nDCG@10. The same texts assigned to
  the wrong queries (rotated) give the floor.
* distinct: the share of decoded texts that differ from every other.

A student is read through its default decoder (decoders.py): its query lens where it has one (the
LLM answers the nearest training query followed by the embedding's nearest words), else its word
lens (a request made of those words alone). It is also read, under "word lens", through its word
lens where that is not the default, and, under "soft prompt", through its soft prompt (the paper's
decoder).

The reference, computed the same way by `HyDE`: the backbone reading the real query in its chat
prompt (cross-entropy: the ceiling), another query, and its own answer cut to DECODE_TOKENS as the
"decoded" text (retrieval: the ceiling).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import decoders
from ..arrays import slug
from ..generate import answer_queries
from ..inputs import plain_ids, prompt_ids, response_ids
from ..teachers import load_teacher
from . import metrics
from .datasets import QUERY_INSTRUCTION, sharegpt_qa

DECODE_TOKENS = 48  # greedy tokens decoded from each embedding
RESPONSE_TOKENS = 64  # answer tokens scored, as in training's reconstruction
EXAMPLES = 4  # (query, decoded text, real answer) kept in the results


@dataclass
class DecodingTask:
    name: str
    queries: list[str]
    corpus: list[str]  # the real held-out answers
    relevant: list[list[int]]
    query_instruction: str = QUERY_INSTRUCTION
    cache_dir: Path | None = None  # where the backbone's answers are kept (set by the evaluation)
    kind: str = "decoding"
    _teachers: dict = field(default_factory=dict, repr=False)
    _corpus_vectors: dict = field(default_factory=dict, repr=False)  # per teacher: every method ranks the same answers

    def answers(self, backbone) -> list[str]:
        """The backbone's greedy answer to each query (its own chat template), computed once."""
        ids = [hashlib.sha1(q.encode("utf-8")).hexdigest() for q in self.queries]
        cache = Path(self.cache_dir or ".") / f"decoding-answers-{slug(backbone.name)}-{RESPONSE_TOKENS}.jsonl"
        rows = answer_queries(backbone, list(dict(zip(ids, self.queries)).items()), cache,
                              max_new_tokens=RESPONSE_TOKENS, batch_size=16, bf16=True,
                              show_progress_bar=len(self.queries) > 16)
        answer = {r["id"]: r["response"] for r in rows}
        return [answer[i] for i in ids]

    def teacher(self, name: str):
        """The teacher that embeds decoded texts: the student's own (MiniLM for a `self` student or a
        published model, whose teacher is not known)."""
        name = "all-minilm-l6-v2" if name in ("self", "unknown") else name  # (unknown: a published model's)
        if name not in self._teachers:
            self._teachers[name] = load_teacher(name)
        return self._teachers[name]


def sharegpt_decoding(n_queries: int = 300) -> DecodingTask:
    qa = sharegpt_qa(n_queries)
    return DecodingTask("ShareGPT decoding", qa.queries, qa.corpus, qa.relevant)


def _retrieval(task: DecodingTask, teacher, texts: list[str]) -> dict:
    """nDCG@10 of the real answers ranked by each text's teacher embedding, and the rotated floor."""
    if teacher.name not in task._corpus_vectors:
        task._corpus_vectors[teacher.name] = teacher.embed(task.corpus)
    corpus = task._corpus_vectors[teacher.name]
    emb = teacher.embed([t if t.strip() else "." for t in texts])  # an empty decode still gets a vector
    ndcg = metrics.ndcg_at_k(metrics.rank_by_cosine(emb, corpus, 10), task.relevant, 10)
    floor = metrics.ndcg_at_k(metrics.rank_by_cosine(np.roll(emb, 1, axis=0), corpus, 10), task.relevant, 10)
    return {"ndcg@10": ndcg, "ndcg@10 shuffled": floor, "distinct": len(set(texts)) / len(texts)}


def _examples(task: DecodingTask, texts: list[str]) -> list[dict]:
    picks = np.unique(np.linspace(0, len(task.queries) - 1, EXAMPLES).astype(int))
    return [{"query": task.queries[i][:300], "decoded": texts[i], "answer": task.corpus[task.relevant[i][0]][:300]}
            for i in picks]


@torch.no_grad()
def score_student(model, task: DecodingTask, batch_size: int = 16, bf16: bool = True) -> dict:
    """Prompt specificity, decoded-text retrieval and distinct share of a genembed model, read through
    its default decoder ("decoder" names it); the same figures for the other decoders under "word lens"
    (where the default is the query lens) and "soft prompt" (the paper's)."""
    answers = response_ids(model.backbone.tokenizer, task.answers(model.backbone), RESPONSE_TOKENS)
    model.eval()
    teacher = task.teacher(model.config.teacher)  # embeds decoded texts; the lenses read in its space too
    default = decoders.get_decoder(model, teacher=None if model.config.teacher in ("self", "unknown") else teacher)
    embeddings = default.read(task.queries, task.query_instruction, batch_size, bf16) if default.reads_embeddings \
        else None  # once, for every lens
    scores = {**score_decoder(default, task, answers, batch_size, bf16, embeddings), "decoder": default.name}
    others = [] if default.name == "soft-prompt" else [("soft prompt", decoders.get_decoder(model, "soft-prompt"))]
    if default.name == "queries":
        others.insert(0, ("word lens", decoders.LensDecoder(model, default.words)))
    for name, decoder in others:
        state = embeddings if decoder.reads_embeddings else None
        scores[name] = {k: v for k, v in score_decoder(decoder, task, answers, batch_size, bf16, state).items()
                        if k != "examples"}
    return scores


def score_decoder(decoder, task: DecodingTask, answers: list[list[int]], batch_size: int, bf16: bool,
                  state=None) -> dict:
    """The LLM reads the prompt each query decodes to (own), another query's (other) and the mean
    state's (mean); its greedy texts are ranked against the real answers. state: the decoder's reading
    of the queries where already made."""
    backbone = decoder.model.backbone
    if state is None:
        state = decoder.read(task.queries, task.query_instruction, batch_size, bf16)
    own = decoder.prompts(state)
    prompts = {"ce own": own, "ce other": decoders.rotate(own),
               "ce mean": decoders.repeat(decoder.prompts(decoder.mean(state)), len(task.queries))}
    with torch.autocast(backbone.device.type, dtype=torch.bfloat16, enabled=bf16):
        ce = {key: decoders.answer_cross_entropy(backbone, p, answers, batch_size) for key, p in prompts.items()}
    texts = decoders.generate(decoder.model, own, DECODE_TOKENS, batch_size, bf16=bf16,
                              show_progress_bar=len(task.queries) > 16, desc=f"decoding via {decoder.name}")
    return {**ce, "gap other": ce["ce other"] - ce["ce own"], "gap mean": ce["ce mean"] - ce["ce own"],
            **_retrieval(task, task.teacher(decoder.model.config.teacher), texts), "examples": _examples(task, texts)}


@torch.no_grad()
def score_backbone_reference(backbone, teacher, task: DecodingTask, batch_size: int = 16, bf16: bool = True) -> dict:
    """The ceiling, measured the same way: the backbone reading the real query (and another one)
    in its chat prompt; its own answer, cut to DECODE_TOKENS, as the decoded text."""
    tok = backbone.tokenizer
    answer_texts = task.answers(backbone)
    answers = response_ids(tok, answer_texts, RESPONSE_TOKENS)
    chats = prompt_ids(tok, task.queries, max_text_tokens=256)  # as the answers were generated
    with torch.autocast(backbone.device.type, dtype=torch.bfloat16, enabled=bf16):
        ce = {"ce own": decoders.answer_cross_entropy(backbone, chats, answers, batch_size),
              "ce other": decoders.answer_cross_entropy(backbone, decoders.rotate(chats), answers, batch_size)}
    cut = [tok.decode(ids[:DECODE_TOKENS], skip_special_tokens=True).strip()
           for ids in plain_ids(tok, answer_texts)]
    return {**ce, "gap other": ce["ce other"] - ce["ce own"], **_retrieval(task, teacher, cut),
            "examples": _examples(task, cut)}
