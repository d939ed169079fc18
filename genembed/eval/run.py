"""Score methods on tasks; write a markdown table, a JSON file and a PNG chart.

Rows accumulate in OUT/results.json (results.py): evaluating one method again replaces its scores
on the tasks run (its scores on other tasks stay if the same method made them: each score keeps its
maker, method.identity(), as "made_by").
Primary metrics: Q→A nDCG@10, classification accuracy, clustering V-measure (their mean is
"avg"). Safety is reported apart: share of top-5 results that are harmful (lower is safer) and
that are refusals. Encode cost, measured on the same held-out queries for every method with
nothing cached: seconds per 1,000 texts in one call (throughput) and milliseconds per query
encoded alone (latency).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from . import metrics
from ..errors import InputError
from .datasets import LabelledTask, RetrievalTask, advbench_safety, rotten_tomatoes, sharegpt_qa, strongreject_clusters
from .decoding import sharegpt_decoding
from .results import ResultsFile, cell, colours, figure, made_otherwise, save_png

TASKS = {"qa": sharegpt_qa, "safety": advbench_safety, "classification": rotten_tomatoes,
         "clustering": strongreject_clusters, "decoding": sharegpt_decoding}

PRIMARY = {"qa": "ndcg@10", "classification": "accuracy", "clustering": "v_measure"}


def score_task(method, task) -> dict:
    if task.kind == "decoding":
        return method.decoding(task)
    if isinstance(task, RetrievalTask):
        q = method.encode(task.queries, task.query_instruction, "query")
        d = method.encode(task.corpus, task.document_instruction, "document")
        ranked = metrics.rank_by_cosine(q, d, k=10)
        if task.doc_kind:
            return {"harmful@5": metrics.kind_share_at_k(ranked, task.doc_kind, "harmful", 5),
                    "refusal@5": metrics.kind_share_at_k(ranked, task.doc_kind, "refusal", 5)}
        return {"ndcg@10": metrics.ndcg_at_k(ranked, task.relevant, 10),
                "recall@10": metrics.recall_at_k(ranked, task.relevant, 10)}
    assert isinstance(task, LabelledTask)
    x = method.encode(task.texts, task.instruction, "text")
    if task.kind == "classification":
        return metrics.probe_scores(x, task.labels, task.pool_index, task.test_index, task.train_per_class)
    return {"v_measure": metrics.clustering_v_measure(x, task.labels)}


def encode_cost(method, texts: list[str], instruction: str) -> dict:
    """Query-side encode cost, nothing cached: seconds per 1,000 texts encoded in one call
    (throughput: the method batches as it likes), and milliseconds per query encoded alone, one
    call per query (latency: what a server answering single queries pays)."""
    if hasattr(method, "use_cache"):
        method.use_cache = False
    try:
        start = time.perf_counter()
        method.encode(texts, instruction, "query")
        batched = time.perf_counter() - start
        start = time.perf_counter()
        for text in texts:
            method.encode([text], instruction, "query")
        alone = time.perf_counter() - start
    finally:
        if hasattr(method, "use_cache"):
            method.use_cache = True
    return {"seconds_per_1k": 1000 * batched / len(texts), "ms_per_query_alone": 1000 * alone / len(texts)}


def earlier_scores(results: dict, name: str, tasks: dict, made_by: dict) -> tuple[dict, dict]:
    """What a method scored again starts from: (its scores on the tasks not run now, its scores on the tasks run
    now that a stopped run of it finished). A method keeps its scores on tasks not run this time (e.g. a new
    task added to an existing table) only if this very method made them (made_by: the same weights, backend
    and precision): a retrained checkpoint keeps its name, so its predecessor's scores are dropped, never
    shown as its own. A stopped run resumes: the tasks it finished are kept in results["unfinished"] until
    its row is complete, and not scored again."""
    row = {k: v for k, v in results["methods"].get(name, {}).items() if k in results["tasks"]}
    other = sorted(k for k in set(row) - set(tasks) if made_otherwise(row[k], made_by))
    if other:
        print(f"{name}: dropping its earlier scores on {', '.join(other)}: made by another version of it "
              "(other weights, backend or precision)", flush=True)
    row = {k: v for k, v in row.items() if k not in other}
    kept = sorted(set(row) - set(tasks))
    if kept:
        print(f"{name}: keeping its earlier scores on {', '.join(kept)}", flush=True)
    done = {k: v for k, v in results.get("unfinished", {}).get(name, {}).items()
            if k in tasks and v.get("made_by") == made_by}
    if done:
        print(f"{name}: resuming, its scores on {', '.join(sorted(done))} from the stopped run", flush=True)
    return row, done


def evaluate(methods: list, task_names: list[str], out_dir: str | Path, cost_texts: int = 32,
             cost_only: bool = False, skip_cost: bool = False) -> dict:
    """Score every method on every task (rows accumulate in OUT/results.json). cost_only: keep the
    scores already there and measure only the encode cost again (e.g. on an idle machine);
    skip_cost: the reverse, keep the cost a row already has (a row without one is measured)."""
    # rows accumulate: a method evaluated again replaces its row, the others stay
    store = ResultsFile(out_dir, lambda: {"tasks": {}, "methods": {}}, indent=2)
    results, previous = store.data, store.path
    tasks = {} if cost_only else {name: TASKS[name]() for name in task_names}  # cost only: scores stay as they are
    for task in tasks.values():
        if task.kind == "decoding":
            task.cache_dir = store.out_dir / "cache"  # the backbone's answers to its queries
    for name, task in tasks.items():
        if task.kind == "decoding":
            instr = {"query": task.query_instruction}
        elif isinstance(task, RetrievalTask):
            instr = {"query": task.query_instruction, "document": task.document_instruction}
        else:
            instr = {"text": task.instruction}
        results["tasks"][name] = {"title": task.name, "instructions": instr}
    cost_sample = sharegpt_qa(n_queries=cost_texts)
    for method in methods:
        if cost_only:
            if method.name not in results["methods"]:
                raise InputError(f"--cost-only: {method.name!r} has no scores in {previous} yet; evaluate it first")
            row = results["methods"][method.name]
            row.update(encode_cost(method, cost_sample.queries, cost_sample.query_instruction))
            print(f"{method.name:<45} {row['seconds_per_1k']:.1f} s / 1k texts, "
                  f"{row['ms_per_query_alone']:.0f} ms / query alone", flush=True)
            store.save()
            continue
        made_by = method.identity()
        row, done = earlier_scores(results, method.name, tasks, made_by)
        unfinished = results.setdefault("unfinished", {})
        for name, task in tasks.items():
            if getattr(method, "tasks", None) is not None and name not in method.tasks:
                continue  # e.g. HyDE, whose generation is too slow on CPU for every task
            if task.kind == "decoding" and not hasattr(method, "decoding"):
                continue  # only methods with a decoder view (students; HyDE as the reference)
            if name in done:
                row[name] = done[name]
                continue
            t0 = time.perf_counter()
            row[name] = {**score_task(method, task), "made_by": made_by}
            shown = {k: v for k, v in row[name].items() if k not in ("examples", "made_by")}
            print(f"{method.name:<45} {name:<15} {shown}  ({time.perf_counter() - t0:.0f} s)", flush=True)
            unfinished[method.name] = {k: row[k] for k in tasks if k in row}
            store.save()  # a task's score survives a kill
        previous_row = results["methods"].get(method.name, {})
        if skip_cost and "seconds_per_1k" in previous_row:
            row.update({k: previous_row[k] for k in ("seconds_per_1k", "ms_per_query_alone") if k in previous_row})
        else:
            row.update(encode_cost(method, cost_sample.queries, cost_sample.query_instruction))
        primaries = [row[t][PRIMARY[t]] for t in PRIMARY if t in row]
        row["avg"] = float(np.mean(primaries)) if all(t in row for t in PRIMARY if t in results["tasks"]) else None
        results["methods"][method.name] = row
        unfinished.pop(method.name, None)
        if not unfinished:
            results.pop("unfinished")
        store.save()  # progress survives
    store.report(markdown_table, plot)
    return results


def markdown_table(results: dict) -> str:
    names = list(results["methods"])
    tasks = results["tasks"]
    cols = []  # (header, task, metric)
    for t, metric_list in (("qa", ["ndcg@10", "recall@10"]), ("safety", ["harmful@5", "refusal@5"]),
                           ("classification", ["accuracy", "macro_f1"]), ("clustering", ["v_measure"]),
                           ("decoding", ["gap other", "gap mean", "ndcg@10", "distinct"])):
        if t in tasks:
            cols += [(f"{t} {m}" + (" ↓" if m == "harmful@5" else ""), t, m) for m in metric_list]
    lines = ["| method | " + " | ".join(c[0] for c in cols) + " | avg | s / 1k texts | ms / query alone |",
             "|---" * (len(cols) + 4) + "|"]
    for name in names:
        row = results["methods"][name]
        cells = [cell(row.get(t, {}).get(m)) for _, t, m in cols]
        alone = row.get("ms_per_query_alone")  # rows scored before it was measured have none
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {cell(row['avg'])} | {row['seconds_per_1k']:.1f} | "
                     + ("–" if alone is None else f"{alone:.0f}") + " |")
    if "decoding" in tasks:
        lines += [""] + decoding_section(results)
    lines.append("")
    lines.append("Instructions (part of each task):")
    for t, info in tasks.items():
        for side, text in info["instructions"].items():
            lines.append(f"- {info['title']} ({side}): \"{text}\"")
    return "\n".join(lines) + "\n"


DECODING_COLUMNS = ("ce own", "ce other", "ce mean", "gap other", "gap mean", "ndcg@10", "ndcg@10 shuffled", "distinct")


def decoding_section(results: dict) -> list[str]:
    """The decoding task in full: every cross-entropy, the retrieval floor, and a few examples."""
    rows = {n: r["decoding"] for n, r in results["methods"].items() if "decoding" in r}
    if not rows:
        return []
    lines = ["Decoding (held-out ShareGPT queries; cross-entropy of the backbone's own answers in nats per token; "
             "a student's prompt is the request of its default decoder, its query lens (nearest training query "
             "and words) where it has one, else its word lens; other rows name their decoder; "
             "for HyDE the prompt is the real query in the chat template: the ceiling):", "",
             "| method | " + " | ".join(DECODING_COLUMNS) + " |", "|---" * (len(DECODING_COLUMNS) + 1) + "|"]
    for name, row in rows.items():
        lines.append(f"| {name} | " + " | ".join(cell(row.get(c)) for c in DECODING_COLUMNS) + " |")
        for other, label in (("word lens", "word lens"), ("soft prompt", "soft prompt (the paper's decoder)")):
            if other in row:  # a student read through its other decoders
                lines.append(f"| {name}, {label} | " + " | ".join(cell(row[other].get(c)) for c in DECODING_COLUMNS)
                             + " |")
    for name, row in rows.items():
        lines += ["", f"Decoded examples, {name}:", ""]
        for ex in row.get("examples", []):
            lines.append(f"- query: {_one_line(ex['query'])}\n  decoded: {_one_line(ex['decoded'])}\n"
                         f"  real answer: {_one_line(ex['answer'])}")
    return lines


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return repr(text[:limit] + ("…" if len(text) > limit else ""))


def plot(results: dict, path: Path) -> None:
    metrics_shown = [(t, m) for t, m in (("qa", "ndcg@10"), ("safety", "harmful@5"), ("classification", "accuracy"),
                                         ("clustering", "v_measure"), ("decoding", "ndcg@10"))
                     if t in results["tasks"]]
    names = list(results["methods"])
    fig = figure((2.2 * len(metrics_shown) + 3, 4))
    ax = fig.subplots()
    width = 0.8 / max(1, len(names))
    palette = colours(len(names))
    for i, name in enumerate(names):
        values = [results["methods"][name].get(t, {}).get(m, 0.0) for t, m in metrics_shown]
        ax.bar(np.arange(len(metrics_shown)) + i * width, values, width, label=name, color=palette[i % len(palette)])
    ax.set_xticks(np.arange(len(metrics_shown)) + width * (len(names) - 1) / 2)
    ax.set_xticklabels([f"{t}\n{m}" + (" (lower is safer)" if m == "harmful@5" else "") for t, m in metrics_shown])
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1, 1))
    save_png(fig, path)
