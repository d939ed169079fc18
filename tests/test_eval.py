import json
import math

import numpy as np
import pytest

from genembed.eval import metrics


def use_tiny_tasks(monkeypatch, *names):
    """genembed eval's task table replaced by tiny in-memory tasks (NAMES of them); returns it."""
    from genembed.eval import run
    from genembed.eval.datasets import LabelledTask, RetrievalTask

    every = {
        "qa": lambda: RetrievalTask("tiny qa", ["how do I boil an egg", "capital of france"],
                                    ["boil it nine minutes", "paris", "the sea"], [[0], [1]]),
        "classification": lambda: LabelledTask("tiny cls", ["a", "b", "c", "d", "e", "f"], ["x", "y"] * 3, "", "classification",
                                               train_per_class=1, test_index=[4, 5], pool_index=[0, 1, 2, 3]),
        "clustering": lambda: LabelledTask("tiny clu", ["a", "b", "c", "d"], ["x", "y", "x", "y"], "", "clustering"),
    }
    tasks = {name: every[name] for name in names}
    monkeypatch.setattr(run, "TASKS", tasks)
    monkeypatch.setattr(run, "sharegpt_qa", lambda n_queries: every["qa"]())
    return tasks


def test_ndcg_and_recall_by_hand():
    ranked = np.array([[3, 1, 2], [0, 2, 1], [2, 0, 1]])
    relevant = [[1], [0], [5]]
    # query 0: relevant at rank 2 -> 1/log2(3); query 1: rank 1 -> 1; query 2: absent -> 0
    expected = (1 / math.log2(3) + 1 + 0) / 3
    assert metrics.ndcg_at_k(ranked, relevant, k=3) == pytest.approx(expected)
    assert metrics.ndcg_at_k(ranked, relevant, k=1) == pytest.approx(1 / 3)
    assert metrics.recall_at_k(ranked, relevant, k=3) == pytest.approx(2 / 3)
    two = metrics.ndcg_at_k(np.array([[4, 7, 9]]), [[7, 9]], k=3)
    assert two == pytest.approx((1 / math.log2(3) + 1 / math.log2(4)) / (1 + 1 / math.log2(3)))


def test_rank_by_cosine_orders_by_similarity():
    q = np.array([[1.0, 0.0], [0.0, 2.0]])
    d = np.array([[0.0, 1.0], [1.0, 0.1], [1.0, 1.0], [-1.0, 0.0]])
    assert metrics.rank_by_cosine(q, d, k=3).tolist() == [[1, 2, 0], [0, 2, 1]]


def test_kind_share():
    ranked = np.array([[0, 1], [2, 0]])
    assert metrics.kind_share_at_k(ranked, ["harmful", "benign", "refusal"], "harmful", k=2) == 0.5


def test_v_measure_perfect_and_random():
    rng = np.random.default_rng(0)
    labels = ["a"] * 20 + ["b"] * 20 + ["c"] * 20
    centers = np.eye(3) * 10
    x = np.concatenate([centers[i] + rng.normal(0, 0.1, (20, 3)) for i in range(3)])
    assert metrics.clustering_v_measure(x, labels, seeds=3) == pytest.approx(1.0)
    assert metrics.clustering_v_measure(rng.normal(size=(60, 3)), labels, seeds=3) < 0.2


def test_probe_separable_and_chance():
    rng = np.random.default_rng(0)
    labels = ["x"] * 40 + ["y"] * 40
    x = np.concatenate([rng.normal(-3, 1, (40, 4)), rng.normal(3, 1, (40, 4))])
    pool = list(range(0, 20)) + list(range(40, 60))
    test = list(range(20, 40)) + list(range(60, 80))
    assert metrics.probe_scores(x, labels, pool, test, per_class=5, seeds=3)["accuracy"] == 1.0
    noise = rng.normal(size=(80, 4))
    assert metrics.probe_scores(noise, labels, pool, test, per_class=5, seeds=3)["accuracy"] < 0.75


def test_real_task_loaders():
    from genembed.data import load_sharegpt
    from genembed.eval.datasets import (
        advbench_safety,
        rotten_tomatoes,
        sharegpt_qa,
        strongreject_clusters,
    )

    train_ids = {c.id for c in load_sharegpt("train")}
    heldout = load_sharegpt("heldout")
    assert len(heldout) >= 1000 and not train_ids & {c.id for c in heldout}
    train_roots = {i.rpartition("_")[0] for i in train_ids}
    assert not train_roots & {c.id.rpartition("_")[0] for c in heldout}, "parts of one chat stay on one side"
    train_queries = {c.query for c in load_sharegpt("train")}
    qa = sharegpt_qa()
    assert len(qa.queries) == 300 and len(qa.corpus) >= 1000
    assert not set(qa.queries) & train_queries, "no held-out query text is a training query"
    assert all(len(r) == 1 for r in qa.relevant)
    safety = advbench_safety()
    assert len(safety.queries) == 520
    assert {k: safety.doc_kind.count(k) for k in set(safety.doc_kind)}["harmful"] >= 380
    assert safety.doc_kind.count("refusal") >= 50
    cls = rotten_tomatoes()
    assert sorted(set(cls.labels)) == ["fresh", "plot", "rotten"]
    assert not set(cls.test_index) & set(cls.pool_index)
    clu = strongreject_clusters()
    assert len(clu.texts) == 313 and len(set(clu.labels)) == 6


def test_importing_and_plotting_leave_the_matplotlib_backend_alone(tmp_path):
    """genembed's charts draw on their own Agg canvas: importing genembed.train / genembed.eval.* or writing a
    chart neither changes the backend a program chose nor loads pyplot."""
    import subprocess
    import sys

    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps({"step": s, "align": 1 / (s + 1)}) + "\n" for s in range(30)))
    code = f"""
import json, sys, matplotlib
matplotlib.use("svg")
import genembed.train, genembed.eval.run, genembed.eval.benchmark, genembed.eval.methods
seen = [matplotlib.get_backend()]
genembed.train.plot_losses({str(log)!r}, {str(tmp_path / "losses.png")!r})
genembed.eval.run.plot({{"tasks": {{"qa": {{}}}}, "methods": {{"m": {{"qa": {{"ndcg@10": 0.5}}}}}}}}, {str(tmp_path / "run.png")!r})
genembed.eval.benchmark.plot({{"methods": {{"m": {{"stsb-dev": {{"spearman": 0.5}}}}}}}}, {str(tmp_path / "bench.png")!r})
seen.append(matplotlib.get_backend())
print(json.dumps([seen, "matplotlib.pyplot" in sys.modules]))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.splitlines()[-1]) == [["svg", "svg"], False]
    for name in ("losses.png", "run.png", "bench.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_end_to_end_eval_on_the_tiny_model(tiny_model, tmp_path, monkeypatch):
    from genembed.eval import run
    from genembed.eval.methods import Student

    tasks = use_tiny_tasks(monkeypatch, "qa", "classification", "clustering")
    results = run.evaluate([Student(tiny_model, "tiny")], list(tasks), tmp_path)
    row = results["methods"]["tiny"]
    assert 0 <= row["qa"]["ndcg@10"] <= 1 and row["seconds_per_1k"] > 0 and row["ms_per_query_alone"] > 0
    assert row["avg"] == pytest.approx(np.mean([row["qa"]["ndcg@10"], row["classification"]["accuracy"],
                                                row["clustering"]["v_measure"]]))
    assert "| tiny |" in (tmp_path / "results.md").read_text()
    assert (tmp_path / "results.png").stat().st_size > 1000

    class QAOnly(Student):  # a method that skips tasks (as HyDE does) gets no average
        tasks = {"qa"}

    results = run.evaluate([QAOnly(tiny_model, "qa only")], list(tasks), tmp_path)
    assert results["methods"]["qa only"]["avg"] is None and "classification" not in results["methods"]["qa only"]
    assert "tiny" in results["methods"], "earlier rows stay"
    assert "| qa only |" in (tmp_path / "results.md").read_text()

    # cost only: scores stay exactly as they were, only the cost is measured again
    before = results["methods"]["tiny"]
    calls = []

    class Counted(Student):
        def encode(self, texts, instruction, side):
            calls.append(len(texts))
            return super().encode(texts, instruction, side)

    after = run.evaluate([Counted(tiny_model, "tiny")], list(tasks), tmp_path, cost_only=True)["methods"]["tiny"]
    cost = ("seconds_per_1k", "ms_per_query_alone")
    assert {k: v for k, v in after.items() if k not in cost} == {k: v for k, v in before.items() if k not in cost}
    assert calls == [2, 1, 1]  # the two cost queries in one call, then each alone; no task encoded
    with pytest.raises(ValueError, match="no scores"):
        run.evaluate([Student(tiny_model, "never scored")], list(tasks), tmp_path, cost_only=True)


def test_a_retrained_checkpoint_is_never_shown_with_its_predecessors_scores(tiny_model, tmp_path, monkeypatch, capsys):
    """Scoring a checkpoint again on some tasks keeps its scores on the others only if the same
    weights made them: a retrained default keeps its name, not its predecessor's numbers."""
    import torch

    from genembed.eval import run
    from genembed.eval.methods import Student

    tasks = use_tiny_tasks(monkeypatch, "qa", "clustering")
    run.evaluate([Student(tiny_model, "default")], ["qa", "clustering"], tmp_path, cost_texts=2)
    kept = run.evaluate([Student(tiny_model, "default")], ["qa"], tmp_path, cost_texts=2)["methods"]["default"]
    assert "clustering" in kept, "the same weights keep their scores on the tasks not run"
    with torch.no_grad():
        next(p for p in tiny_model.parameters() if p.requires_grad).add_(0.5)
    capsys.readouterr()
    row = run.evaluate([Student(tiny_model, "default")], ["qa"], tmp_path, cost_texts=2)["methods"]["default"]
    assert "clustering" not in row and row["avg"] is None
    assert "dropping its earlier scores on clustering" in capsys.readouterr().out


def test_ridge_baseline_fits_its_training_targets(tiny_backbone_path, tiny_responses, tmp_path):
    from genembed.backbone import load_backbone
    from genembed.eval.methods import RidgeOnMeanPool
    from genembed.jsonl import read_rows
    from genembed.teachers import SelfTeacher

    teacher = SelfTeacher(load_backbone(tiny_backbone_path))
    ridge = RidgeOnMeanPool(tiny_backbone_path, teacher, tiny_responses, tmp_path, shrinkage=1e-6)
    rows = read_rows(tiny_responses)
    predicted = ridge.encode([r["query"] for r in rows], "", "query")
    target = teacher.embed([r["response"] for r in rows])
    # 5 examples, 32 features: least squares interpolates its training rows
    np.testing.assert_allclose(predicted, target, atol=1e-3)
    assert ridge.r2 > 0.99
    assert "teacher(response)" in ridge.name
    with pytest.raises(ValueError, match="no \\(query, response\\) rows"):
        empty = tmp_path / "empty.jsonl"
        empty.write_text("")
        RidgeOnMeanPool(tiny_backbone_path, teacher, empty, tmp_path)


def test_a_stopped_eval_resumes_without_scoring_its_finished_tasks_again(tiny_model, tmp_path, monkeypatch, capsys):
    """A task's score is written as soon as it is made: a run killed in its third task of an hour each
    loses one task, not three. Resumed, it scores only the tasks it had not finished."""
    from genembed.eval import run
    from genembed.eval.methods import Student

    tasks = use_tiny_tasks(monkeypatch, "qa", "clustering")
    seen = []

    class Stopped(Student):
        def encode(self, texts, instruction, side):
            seen.append(texts[0])
            if texts[0] == "a":  # the clustering task: the machine goes down
                raise KeyboardInterrupt
            return super().encode(texts, instruction, side)

    with pytest.raises(KeyboardInterrupt):
        run.evaluate([Stopped(tiny_model, "default")], list(tasks), tmp_path, cost_texts=2)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert "default" not in saved["methods"] and list(saved["unfinished"]["default"]) == ["qa"]
    qa_score = saved["unfinished"]["default"]["qa"]["ndcg@10"]

    class Counted(Student):
        def encode(self, texts, instruction, side):
            seen.append(texts[0])
            return super().encode(texts, instruction, side)

    seen.clear()
    capsys.readouterr()
    results = run.evaluate([Counted(tiny_model, "default")], list(tasks), tmp_path, cost_texts=2)
    assert "resuming, its scores on qa" in capsys.readouterr().out
    assert "how do I boil an egg" not in seen[:1] and seen[0] == "a", "qa is not encoded again, clustering is"
    row = results["methods"]["default"]
    assert row["qa"]["ndcg@10"] == qa_score and "clustering" in row and row["avg"] is not None
    assert "unfinished" not in json.loads((tmp_path / "results.json").read_text())
