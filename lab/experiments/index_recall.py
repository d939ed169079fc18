"""How much does HNSW lose against exact search on a real corpus, and what does it save?

Corpus: the held-out ShareGPT answers of the Q→A eval task (genembed.eval.datasets.sharegpt_qa),
queries: its held-out queries. The corpus is indexed once with `build_index` (exact, flat); an
HNSW index is then built from the same stored vectors, and both answer the same query vectors.
Reported: recall@k of HNSW against exact search at several efSearch values, Q→A hit@k (the
query's own answer in the top k) for both, build and per-query search times. Writes a markdown
report (default lab/reports/index-recall.md) and results.json in --work.

    .venv/bin/python lab/experiments/index_recall.py                    # bundled model, full held-out set
    .venv/bin/python lab/experiments/index_recall.py --model CKPT --corpus c.jsonl --query-file q.txt   # any corpus

A rerun reuses a finished (or resumes an unfinished) encode in --work/flat; its encode time is
then that of the rerun's share only, and the report says so.
"""
from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from genembed.index import HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH, HNSW_M, VECTORS, build_index, make_faiss_index, read_manifest


def args_parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=None, help="Checkpoint folder (default: the bundled model).")
    p.add_argument("--corpus", type=Path, default=None, help="A .jsonl ('text' key) or text file instead of ShareGPT.")
    p.add_argument("--query-file", type=Path, default=None, help="Queries, one per line (with --corpus).")
    p.add_argument("--queries", type=int, default=300, help="Held-out queries drawn (ShareGPT), as the eval does.")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--ef-search", default="16,32,64,128,256", help="HNSW efSearch values to measure.")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--work", type=Path, default=Path("runs/index-recall"), help="Corpus copy, index, results.json.")
    p.add_argument("--out", type=Path, default=Path("lab/reports/index-recall.md"))
    return p


def corpus_and_queries(args):
    """(corpus file, queries, relevant row per query or None)."""
    if args.corpus is not None:
        if args.query_file is None:
            raise SystemExit("--corpus needs --query-file")
        queries = [q for q in args.query_file.read_text(encoding="utf-8").splitlines() if q.strip()]
        return args.corpus, queries, None
    from genembed.eval.datasets import sharegpt_qa

    task = sharegpt_qa(n_queries=args.queries)
    path = args.work / "corpus.jsonl"
    if not path.exists():  # written once: a changed copy would make the resumable build refuse
        args.work.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".partial")
        tmp.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in task.corpus),
                       encoding="utf-8")
        tmp.replace(path)
    return path, task.queries, [r[0] for r in task.relevant]


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def per_query_ms(index, queries: np.ndarray, k: int) -> float:
    """Median latency of one query at a time (as an interactive search sees it)."""
    times = []
    for q in queries:
        start = time.perf_counter()
        index.search(q[None], k)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def main():
    args = args_parser().parse_args()
    import faiss
    import genembed

    corpus, queries, relevant = corpus_and_queries(args)
    flat_dir = args.work / "flat"
    reused = (flat_dir / "index.json").exists()
    # a first load pays the imports (seconds); build_index's own load of the same folder is then warm
    _, load_s = timed(lambda: genembed.load(args.model))
    opened, build_s = timed(lambda: build_index(args.model, corpus, flat_dir, kind="flat", batch_size=args.batch_size))
    manifest = read_manifest(flat_dir)
    n, dim = manifest["count"], manifest["dim"]
    vectors = np.memmap(flat_dir / VECTORS, dtype=np.float32, mode="r", shape=(n, dim))
    flat, flat_s = timed(lambda: make_faiss_index(vectors, "flat"))
    hnsw, hnsw_s = timed(lambda: make_faiss_index(vectors, "hnsw"))
    qv, query_s = timed(lambda: opened.model.encode(queries, instruction="query", batch_size=args.batch_size,
                                                    normalize=True))
    qv = np.ascontiguousarray(qv, dtype=np.float32)
    k = min(args.k, n)

    def hit_rate(found):
        return None if relevant is None else float(np.mean([r in row for r, row in zip(relevant, found)]))

    _, exact = flat.search(qv, k)
    rows = [{"index": "flat (exact)", "ef_search": None, "recall": 1.0, "hit": hit_rate(exact),
             "ms_per_query": per_query_ms(flat, qv, k)}]
    for ef in [int(e) for e in args.ef_search.split(",") if e]:
        hnsw.hnsw.efSearch = max(ef, k)
        _, found = hnsw.search(qv, k)
        recall = float(np.mean([len(set(a) & set(e)) / k for a, e in zip(found, exact)]))
        rows.append({"index": "hnsw", "ef_search": ef, "recall": recall, "hit": hit_rate(found),
                     "ms_per_query": per_query_ms(hnsw, qv, k)})

    command = " ".join(shlex.quote(a) for a in [".venv/bin/python", "lab/experiments/index_recall.py", *sys.argv[1:]])
    setup = {"command": command, "model": manifest["model"], "corpus": str(corpus), "rows": n, "dim": dim,
             "queries": len(queries), "k": k, "hnsw_m": HNSW_M, "hnsw_ef_construction": HNSW_EF_CONSTRUCTION,
             "faiss": faiss.__version__, "faiss_threads": faiss.omp_get_max_threads(),
             "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
             "model_load_s": load_s, "encode_and_flat_build_s": build_s, "encode_reused": reused, "flat_build_s": flat_s,
             "hnsw_build_s": hnsw_s, "query_encode_s": query_s}
    args.work.mkdir(parents=True, exist_ok=True)
    (args.work / "results.json").write_text(json.dumps({"setup": setup, "rows": rows}, indent=2) + "\n")
    report = render(setup, rows, relevant is not None)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report, encoding="utf-8")
    print(report)


def render(setup: dict, rows: list[dict], has_task: bool) -> str:
    k = setup["k"]
    encode = (f"{setup['encode_and_flat_build_s']:.1f} s" + (" (reused an earlier run's encode: not a full timing)"
                                                            if setup["encode_reused"] else ""))
    lines = [
        "# HNSW against exact search",
        "",
        f"`{setup['command']}`",
        "",
        f"Corpus: {setup['rows']} rows ({setup['corpus']}), dimension {setup['dim']}; {setup['queries']} queries; "
        f"model: {setup['model']}. faiss {setup['faiss']} on {setup['faiss_threads']} thread(s), {setup['machine']}. "
        f"HNSW: M={setup['hnsw_m']}, efConstruction={setup['hnsw_ef_construction']}; `genembed search` uses "
        f"efSearch = max({HNSW_EF_SEARCH}, k).",
        "",
        f"- load the model (first load, imports included): {setup['model_load_s']:.1f} s",
        f"- encode the corpus + flat index (`build_index`, a warm reload of the model included): {encode}",
        f"- faiss index from the stored vectors: flat {setup['flat_build_s']:.2f} s, HNSW {setup['hnsw_build_s']:.2f} s",
        f"- encode the {setup['queries']} queries: {setup['query_encode_s']:.1f} s "
        f"({1000 * setup['query_encode_s'] / max(setup['queries'], 1):.0f} ms each: search time is small beside it)",
        "",
        f"| index | efSearch | recall@{k} vs exact |" + (f" Q→A hit@{k} |" if has_task else "") + " ms / query |",
        "|---|---|---|" + ("---|" if has_task else "") + "---|",
    ]
    for r in rows:
        hit = f" {r['hit']:.3f} |" if has_task else ""
        lines.append(f"| {r['index']} | {r['ef_search'] or '-'} | {r['recall']:.3f} |{hit} {r['ms_per_query']:.3f} |")
    lines += ["", "ms / query: median of one query at a time, faiss search alone (query encoding excluded).", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
