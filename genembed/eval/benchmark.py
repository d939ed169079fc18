"""The broad offline benchmark: 24 tasks of MTEB's six types, split once into a selection set
(for choosing recipes) and a report set (for reporting the chosen one only).

    genembed benchmark --set selection                  # the bundled default and the baselines
    genembed benchmark --model runs/x/run/model --set selection --no-default --baselines ""

Scores accumulate in OUT/results.json (results.py), one entry per (method, task), each with what made it (the
method's identity: a checkpoint's weights, backend and precision): a rerun scores only what is
missing or was made otherwise, so a killed run loses at most the task in flight and a retrained
checkpoint is never reported with its predecessor's scores. Per set: every task's main score, the
mean per task type, and the mean of those means (MTEB's way), as OUT/results.md and
OUT/results.png. A task whose data package is missing is skipped with one line naming the package;
a malformed data file stops that task (file and line named) and the command ends non-zero.

The split is fixed here, before any recipe is compared (docs/benchmark.md: what each task is, why
it sits in its set). Every data set sits in one set only; STS Benchmark's official dev split is
in selection and its test split in report.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import numpy as np

from . import benchmark_tasks as bt
from . import metrics
from ..errors import InputError
from .datasets import rotten_tomatoes, strongreject_clusters
from .methods import memo_encode
from .results import ResultsFile, cell, colours, figure, made_otherwise, save_png
from .run import score_task

SETS = ("selection", "report")
TYPES = ("retrieval", "reranking", "sts", "pair classification", "classification", "clustering")
MAIN = {"retrieval": "ndcg@10", "reranking": "map", "sts": "spearman", "pair classification": "ap",
        "classification": "accuracy", "clustering": "v_measure"}


@dataclass(frozen=True)
class Spec:
    set: str
    type: str
    load: Callable


TASKS = {
    # selection: choose recipes on these
    "sharegpt-qa": Spec("selection", "retrieval", bt.sharegpt_answers),
    "movie-replies": Spec("selection", "reranking", bt.movie_reply_reranking),
    "stsb-dev": Spec("selection", "sts", partial(bt.sts_benchmark, "dev")),
    "wordsim353": Spec("selection", "sts", partial(bt.word_similarity, "WordSim353")),
    "kjv-asv": Spec("selection", "pair classification", bt.bible_verse_pairs),
    "sms-spam": Spec("selection", "classification", bt.sms_spam),
    "tweets": Spec("selection", "classification", partial(bt.hutto_sentiment, "HuttoTweetSentiment")),
    "rotten-tomatoes": Spec("selection", "classification", rotten_tomatoes),
    "chatterbot": Spec("selection", "clustering", bt.chatterbot_categories),
    "strongreject": Spec("selection", "clustering", strongreject_clusters),
    # report: only for reporting the chosen recipe
    "humaneval": Spec("report", "retrieval", bt.humaneval_retrieval),
    "aiabde-faq": Spec("report", "retrieval", bt.aiabde_retrieval),
    "aiabde-answers": Spec("report", "reranking", bt.aiabde_reranking),
    "stsb-test": Spec("report", "sts", partial(bt.sts_benchmark, "test")),
    "lee50": Spec("report", "sts", bt.lee_documents),
    "simlex999": Spec("report", "sts", partial(bt.word_similarity, "SimLex999")),
    "aiabde-paraphrases": Spec("report", "pair classification", bt.aiabde_paraphrases),
    "trec": Spec("report", "classification", bt.trec_coarse),
    "nyt-editorials": Spec("report", "classification", partial(bt.hutto_sentiment, "HuttoNYTEditorialSentiment")),
    "amazon-reviews": Spec("report", "classification", partial(bt.hutto_sentiment, "HuttoAmazonReviewSentiment")),
    "debates": Spec("report", "classification", bt.debates_party),
    "icd10": Spec("report", "clustering", bt.icd10_chapters),
    "trec-fine": Spec("report", "clustering", bt.trec_fine),
    "roget": Spec("report", "clustering", bt.roget_categories),
}


def task_names(sets=SETS, names=None) -> list[str]:
    """The tasks of the given sets (or exactly `names`), in TASKS order."""
    if names:
        unknown = sorted(set(names) - set(TASKS))
        if unknown:
            raise InputError(f"unknown task(s) {unknown}; choose from {sorted(TASKS)}")
        return [n for n in TASKS if n in names]
    unknown = sorted(set(sets) - set(SETS))
    if unknown:
        raise InputError(f"unknown set(s) {unknown}; choose from {list(SETS)}")
    return [n for n, s in TASKS.items() if s.set in sets]


def score(method, task) -> dict:
    """The task's scores for one method (its main score under MAIN[type])."""
    if isinstance(task, bt.PairTask):
        x = memo_encode(method, task.texts1 + task.texts2, task.instruction, "text")  # one call: the sides share texts
        a, b = x[:len(task.texts1)], x[len(task.texts1):]
        if task.kind == "sts":
            return {"spearman": metrics.sts_spearman(a, b, task.scores)}
        return {"ap": metrics.pair_average_precision(a, b, task.scores)}
    if isinstance(task, bt.RerankTask):
        q = memo_encode(method, task.queries, task.query_instruction, "query")
        flat = [c for cands in task.candidates for c in cands]
        d = memo_encode(method, flat, task.document_instruction, "document")
        bounds = np.cumsum([0] + [len(c) for c in task.candidates])
        return metrics.rerank_scores(q, [d[s:e] for s, e in zip(bounds[:-1], bounds[1:])], task.positives)
    # retrieval, classification, clustering: scored as `genembed eval` scores them, through the memo
    return score_task(SimpleNamespace(encode=partial(memo_encode, method)), task)


def applies(method, name: str) -> bool:
    """HyDE answers queries: it runs on the query → document tasks only (retrieval, reranking)."""
    return not getattr(method, "query_tasks_only", False) or TASKS[name].type in ("retrieval", "reranking")


def stale_scores(method, row: dict, names: list[str], made_by: dict, path: Path) -> set[str]:
    """The tasks among `names` whose stored score was made by another version of `method` (other
    weights, backend or precision: method.identity(), kept with each score as "made_by"): they are
    scored again, and one line says what changed. A score stored without "made_by" (an older file)
    is kept, and one line says so (--rescore scores it again)."""
    stored = {n: row[n] for n in names if n in row}
    stale = {n for n, entry in stored.items() if made_otherwise(entry, made_by)}
    unknown = sorted(n for n, entry in stored.items() if "made_by" not in entry)
    if stale:
        before = stored[min(stale)]["made_by"]
        changed = sorted(k for k in set(before) | set(made_by) if before.get(k) != made_by.get(k))
        print(f"{method.name}: {', '.join(changed)} changed since {len(stale)} of its scores in {path} were made; "
              "scoring those again", file=sys.stderr, flush=True)
    if unknown:
        print(f"{method.name}: {len(unknown)} scores in {path} do not record what made them (an older file); "
              "kept as they are (--rescore scores them again)", file=sys.stderr, flush=True)
    return stale


def run(methods: list, names: list[str], out_dir: str | Path, rescore: bool = False) -> dict:
    """Score every method on every task named; results accumulate in OUT/results.json (a (method,
    task) already there is kept unless rescore). Returns the results; results["stopped"] lists the
    tasks a malformed data file stopped."""
    store = ResultsFile(out_dir, lambda: {"methods": {}}, indent=1)
    results, path = store.data, store.path
    results["stopped"] = {}
    loaded: dict = {}
    for method in methods:
        row = results["methods"].setdefault(method.name, {})
        made_by = method.identity()
        stale = set() if rescore else stale_scores(method, row, names, made_by, path)
        for name in names:
            if not applies(method, name) or (name in row and not rescore and name not in stale):
                continue
            if name not in loaded:
                try:
                    loaded[name] = TASKS[name].load()
                except bt.DataFileError as e:
                    loaded[name] = None
                    results["stopped"][name] = str(e)
                    print(f"{name}: stopped, malformed data: {e}", file=sys.stderr, flush=True)
                except FileNotFoundError as e:  # a data package that is not installed (package_file names it)
                    loaded[name] = None
                    print(f"{name}: skipped: {e}", file=sys.stderr, flush=True)
            if loaded[name] is None:
                continue
            start = time.perf_counter()
            row[name] = {**score(method, loaded[name]), "seconds": round(time.perf_counter() - start, 1),
                         "made_by": made_by}
            main = row[name][MAIN[TASKS[name].type]]
            print(f"{method.name:<40} {name:<20} {MAIN[TASKS[name].type]} {main:.3f}  ({row[name]['seconds']:.0f} s)",
                  flush=True)
            store.save()  # progress survives a kill
    store.save()
    store.report(markdown, plot)
    return results


def summary(row: dict, set_name: str) -> dict:
    """One method's means on one set: per task type (over the tasks it was scored on) and the mean
    of those type means; `complete` says whether every task of the set was scored."""
    by_type = {}
    for t in TYPES:
        scores = [row[n][MAIN[t]] for n, s in TASKS.items() if s.set == set_name and s.type == t and n in row]
        if scores:
            by_type[t] = float(np.mean(scores))
    tasks = [n for n, s in TASKS.items() if s.set == set_name]
    return {"types": by_type, "mean": float(np.mean(list(by_type.values()))) if by_type else None,
            "complete": all(n in row for n in tasks)}


def markdown(results: dict) -> str:
    lines = []
    for set_name in SETS:
        names = [n for n, s in TASKS.items() if s.set == set_name]
        rows = {m: r for m, r in results["methods"].items() if any(n in r for n in names)}
        if not rows:
            continue
        lines += [f"## {set_name.capitalize()} set", "",
                  "| method | " + " | ".join(TYPES) + " | mean of type means |", "|---" * (len(TYPES) + 2) + "|"]
        for method, row in rows.items():
            s = summary(row, set_name)
            mean = cell(s["mean"]) + ("" if s["complete"] else " (incomplete)")
            lines.append(f"| {method} | " + " | ".join(cell(s["types"].get(t)) for t in TYPES) + f" | {mean} |")
        lines += ["", "Per task (" + ", ".join(f"{t}: {m}" for t, m in MAIN.items()) + "):", "",
                  "| method | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
        for method, row in rows.items():
            lines.append(f"| {method} | " + " | ".join(
                cell(row[n][MAIN[TASKS[n].type]]) if n in row else "–" for n in names) + " |")
        lines.append("")
    if results.get("stopped"):
        lines += ["Stopped by malformed data:", ""] + [f"- {n}: {e}" for n, e in results["stopped"].items()]
    return "\n".join(lines) + "\n"


def plot(results: dict, path: Path) -> None:
    """Per set, each method's mean per task type and mean of type means, as grouped bars."""
    methods = list(results["methods"])
    if not methods:
        return
    fig = figure((15, 4.5))
    axes = fig.subplots(1, len(SETS), sharey=True)
    palette = colours(len(methods))
    width = 0.8 / len(methods)
    columns = list(TYPES) + ["mean"]
    for ax, set_name in zip(axes, SETS):
        for i, method in enumerate(methods):
            s = summary(results["methods"][method], set_name)
            values = [s["types"].get(t, 0.0) for t in TYPES] + [s["mean"] or 0.0]
            ax.bar(np.arange(len(columns)) + i * width, values, width, label=method, color=palette[i % len(palette)])
        ax.set_xticks(np.arange(len(columns)) + width * (len(methods) - 1) / 2)
        ax.set_xticklabels([c.replace(" ", "\n") for c in columns], fontsize=8)
        ax.set_title(f"{set_name} set")
        ax.set_ylim(0, 1)
    axes[-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1, 1))
    save_png(fig, path)
