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

A student is read through its default decoder: its query lens where it has one (query_lens.py:
the LLM answers the nearest training query followed by the embedding's nearest words), else its
word lens (word_lens.py: a request made of those words alone). It is also read, under "word lens",
through its word lens where that is not the default, and, under "soft prompt", through its soft
prompt (the paper's decoder).

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
import torch.nn.functional as F

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
        from ..generate import answer_queries
        from ..teachers import file_slug

        ids = [hashlib.sha1(q.encode("utf-8")).hexdigest() for q in self.queries]
        cache = Path(self.cache_dir or ".") / f"decoding-answers-{file_slug(backbone.name)}-{RESPONSE_TOKENS}.jsonl"
        rows = answer_queries(backbone, list(dict(zip(ids, self.queries)).items()), cache,
                              max_new_tokens=RESPONSE_TOKENS, batch_size=16, bf16=True,
                              show_progress_bar=len(self.queries) > 16)
        answer = {r["id"]: r["response"] for r in rows}
        return [answer[i] for i in ids]

    def teacher(self, name: str):
        """The sentence-transformers teacher that embeds decoded texts (MiniLM for a `self` student)."""
        from ..teachers import SentenceTransformerTeacher

        name = "all-minilm-l6-v2" if name == "self" else name
        if name not in self._teachers:
            self._teachers[name] = SentenceTransformerTeacher(name)
        return self._teachers[name]


def sharegpt_decoding(n_queries: int = 300) -> DecodingTask:
    qa = sharegpt_qa(n_queries)
    return DecodingTask("ShareGPT decoding", qa.queries, qa.corpus, qa.relevant)


@torch.no_grad()
def answer_cross_entropy(lm, prefix: torch.Tensor, prefix_mask: torch.Tensor, answer_ids: torch.Tensor,
                         answer_mask: torch.Tensor) -> torch.Tensor:
    """Per-row mean cross-entropy of right-padded answer ids read after a prefix of input
    embeddings [B, P, hidden] (left-padded under prefix_mask)."""
    from ..inputs import positions

    embed = lm.get_input_embeddings()
    inputs = torch.cat([prefix.to(embed.weight.dtype), embed(answer_ids)], dim=1)
    mask = torch.cat([prefix_mask, answer_mask], dim=1)
    logits = lm(inputs_embeds=inputs, attention_mask=mask, position_ids=positions(mask)).logits
    logits = logits[:, prefix.shape[1] - 1: -1].float()
    ce = F.cross_entropy(logits.transpose(1, 2), answer_ids, reduction="none")
    return (ce * answer_mask).sum(1) / answer_mask.sum(1).clamp(min=1)


def _batched_ce(lm, prefixes, answers, pad_id: int, batch_size: int) -> float:
    """Mean over rows of answer cross-entropy; prefixes: per row an [P, hidden] tensor or a list of ids."""
    from ..inputs import pad

    embed = lm.get_input_embeddings()
    out = []
    for start in range(0, len(answers), batch_size):
        part = range(start, min(start + batch_size, len(answers)))
        if isinstance(prefixes, torch.Tensor):
            prefix = prefixes[part.start:part.stop]
            prefix_mask = torch.ones(prefix.shape[:2], dtype=torch.long, device=prefix.device)
        else:
            ids, prefix_mask = pad([prefixes[i] for i in part], pad_id, side="left")
            prefix_mask = prefix_mask.to(lm.device)
            prefix = embed(ids.to(lm.device))
        a_ids, a_mask = pad([answers[i] for i in part], pad_id, side="right")
        out.append(answer_cross_entropy(lm, prefix, prefix_mask, a_ids.to(lm.device), a_mask.to(lm.device)))
    return float(torch.cat(out).mean())


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
    its default decoder (its query lens where it has one, else its word lens; "decoder" names it); the
    same figures for the other decoders under "word lens" (where the default is the query lens) and
    "soft prompt" (the paper's)."""
    from ..inputs import response_ids

    answers = response_ids(model.backbone.tokenizer, task.answers(model.backbone), RESPONSE_TOKENS)
    model.eval()
    via = "queries" if model.query_lens is not None else "words"
    emb = model.encode(task.queries, instruction=task.query_instruction, batch_size=batch_size, bf16=bf16)
    scores = {**_score_lens(model, task, emb, answers, batch_size, bf16, via), "decoder": via}
    others = {"word lens": lambda: _score_lens(model, task, emb, answers, batch_size, bf16, "words")} if via == "queries" else {}
    others["soft prompt"] = lambda: _score_soft_prompt(model, task, answers, batch_size, bf16)
    for name, score in others.items():
        scores[name] = {k: v for k, v in score().items() if k != "examples"}
    return scores


def _specificity(ce: dict) -> dict:
    return {**ce, "gap other": ce["ce other"] - ce["ce own"], "gap mean": ce["ce mean"] - ce["ce own"]}


def _score_lens(model, task: DecodingTask, emb, answers, batch_size: int, bf16: bool, via: str) -> dict:
    """The LLM reads the request each query embedding (emb) decodes through (via "words": its nearest words,
    word_lens.py; via "queries": its nearest training query and words, query_lens.py); the mean prompt
    is the request of the mean embedding."""
    from ..generate import generate_texts
    from ..word_lens import request_ids

    tok, lm = model.backbone.tokenizer, model.backbone.model
    own = request_ids(tok, model.requests(emb, via))
    mean = request_ids(tok, model.requests(emb.mean(0, keepdims=True), via)) * len(own)
    with torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=bf16):
        ce = {key: _batched_ce(lm, p, answers, tok.pad_token_id, batch_size)
              for key, p in (("ce own", own), ("ce other", own[1:] + own[:1]), ("ce mean", mean))}
    texts = generate_texts(model.backbone, own, DECODE_TOKENS, batch_size, bf16=bf16)
    return {**_specificity(ce), **_retrieval(task, task.teacher(model.config.teacher), texts),
            "examples": _examples(task, texts)}


def _score_soft_prompt(model, task: DecodingTask, answers, batch_size: int, bf16: bool) -> dict:
    """The paper's decoder: the LLM reads each query's soft prompt (in the model's frame)."""
    tok, lm = model.backbone.tokenizer, model.backbone.model
    autocast = torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=bf16)
    prompts, texts = [None] * len(task.queries), [""] * len(task.queries)
    with autocast:
        for idx, ids, mask in model._batches(task.queries, task.query_instruction, batch_size, None, "decoding"):
            soft, _ = model(ids, mask)
            for i, p, row in zip(idx, soft, model.generate_from_soft_prompt(soft, DECODE_TOKENS)):
                prompts[i] = p.float()
                texts[i] = tok.decode(row, skip_special_tokens=True).strip()
        own = torch.stack(prompts)
        mean = own.mean(0, keepdim=True).expand_as(own)
        ce = {key: _batched_ce(lm, model.decoder_input(p), answers, tok.pad_token_id, batch_size)
              for key, p in (("ce own", own), ("ce other", own.roll(1, 0)), ("ce mean", mean))}
    return {**_specificity(ce), **_retrieval(task, task.teacher(model.config.teacher), texts),
            "examples": _examples(task, texts)}


@torch.no_grad()
def score_backbone_reference(backbone, teacher, task: DecodingTask, batch_size: int = 16, bf16: bool = True) -> dict:
    """The ceiling, measured the same way: the backbone reading the real query (and another one)
    in its chat prompt; its own answer, cut to DECODE_TOKENS, as the decoded text."""
    from ..inputs import plain_ids, prompt_ids, response_ids

    tok, lm = backbone.tokenizer, backbone.model
    answer_texts = task.answers(backbone)
    answers = response_ids(tok, answer_texts, RESPONSE_TOKENS)
    chats = prompt_ids(tok, task.queries, max_text_tokens=256)  # as the answers were generated
    autocast = torch.autocast(backbone.device.type, dtype=torch.bfloat16, enabled=bf16)
    with autocast:
        ce = {"ce own": _batched_ce(lm, chats, answers, tok.pad_token_id, batch_size),
              "ce other": _batched_ce(lm, chats[1:] + chats[:1], answers, tok.pad_token_id, batch_size)}
    cut = [tok.decode(ids[:DECODE_TOKENS], skip_special_tokens=True).strip()
           for ids in plain_ids(tok, answer_texts)]
    return {**ce, "gap other": ce["ce other"] - ce["ce own"], **_retrieval(task, teacher, cut),
            "examples": _examples(task, cut)}
