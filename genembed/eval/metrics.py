"""Scores computed from embeddings alone: retrieval ranks, a linear probe, k-means clusters, pair
cosines against human scores or labels, reranking."""
from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr
from sklearn.cluster import KMeans
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, average_precision_score, f1_score, v_measure_score

from ..vectors import top_k, unit


def rank_by_cosine(queries: np.ndarray, corpus: np.ndarray, k: int) -> np.ndarray:
    """[n_queries, k] corpus indices, most similar first."""
    return top_k(queries, corpus, k)[0]


def ndcg_at_k(ranked: np.ndarray, relevant: list[list[int]], k: int = 10) -> float:
    """Mean nDCG@k with binary relevance."""
    scores = []
    for row, rel in zip(ranked, relevant):
        rel = set(rel)
        dcg = sum(1.0 / np.log2(r + 2) for r, doc in enumerate(row[:k]) if doc in rel)
        ideal = sum(1.0 / np.log2(r + 2) for r in range(min(len(rel), k)))
        scores.append(dcg / ideal if ideal else 0.0)
    return float(np.mean(scores))


def recall_at_k(ranked: np.ndarray, relevant: list[list[int]], k: int = 10) -> float:
    """Mean share of each query's relevant documents found in its top k."""
    return float(np.mean([len(set(row[:k]) & set(rel)) / len(rel) for row, rel in zip(ranked, relevant) if rel]))


def kind_share_at_k(ranked: np.ndarray, kinds: list[str], kind: str, k: int = 5) -> float:
    """Share of all top-k results that are of the given kind."""
    return float(np.mean([[kinds[d] == kind for d in row[:k]] for row in ranked]))


def probe_scores(embeddings: np.ndarray, labels: list[str], pool: list[int], test: list[int],
                 per_class: int, seeds: int = 5) -> dict:
    """MTEB-style: logistic regression on `per_class` examples per label drawn from the pool
    (one draw per seed), scored on the fixed test set; mean accuracy and macro-F1."""
    labels = np.asarray(labels)
    accs, f1s = [], []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        train = [i for label in sorted(set(labels[pool])) for i in
                 rng.permutation([p for p in pool if labels[p] == label])[:per_class]]
        clf = LogisticRegression(max_iter=1000).fit(embeddings[train], labels[train])
        pred = clf.predict(embeddings[test])
        accs.append(accuracy_score(labels[test], pred))
        f1s.append(f1_score(labels[test], pred, average="macro"))
    return {"accuracy": float(np.mean(accs)), "macro_f1": float(np.mean(f1s))}


def clustering_v_measure(embeddings: np.ndarray, labels: list[str], seeds: int = 10) -> float:
    """Mean V-measure of k-means (k = number of labels) over several seeds, on unit vectors."""
    k = len(set(labels))
    x = unit(embeddings)
    return float(np.mean([v_measure_score(labels, KMeans(n_clusters=k, n_init=1, random_state=s).fit_predict(x))
                          for s in range(seeds)]))


def pair_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine of each row of a with the same row of b."""
    return np.sum(unit(a) * unit(b), axis=1)


def sts_spearman(a: np.ndarray, b: np.ndarray, scores) -> float:
    """MTEB's STS score: Spearman correlation of the pairs' cosines with the human scores."""
    return float(spearmanr(pair_cosines(a, b), scores).statistic)


def pair_average_precision(a: np.ndarray, b: np.ndarray, labels) -> float:
    """MTEB's pair-classification score (cosine): average precision of ranking the pairs by cosine
    against their 0 / 1 labels."""
    return float(average_precision_score(np.asarray(labels) > 0.5, pair_cosines(a, b)))


def rerank_scores(queries: np.ndarray, candidates: list[np.ndarray], positives: list[list[int]]) -> dict:
    """MTEB's reranking scores: each query's own candidates ranked by cosine; mean average
    precision and MRR@10 over the queries."""
    aps, rrs = [], []
    for q, cands, pos in zip(unit(queries), candidates, positives):
        order = np.argsort(-(unit(cands) @ q), kind="stable")
        hits = np.isin(order, pos)
        ranks = np.flatnonzero(hits) + 1
        aps.append(float(np.mean(np.arange(1, len(ranks) + 1) / ranks)))
        rrs.append(1.0 / ranks[0] if ranks[0] <= 10 else 0.0)
    return {"map": float(np.mean(aps)), "mrr@10": float(np.mean(rrs))}
