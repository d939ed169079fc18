"""The benchmark driver's bookkeeping (lab/benchmarks/run.py): which worker runs what, and how
worker measurements become the table. The measurements themselves are the benchmark's job."""
import importlib.util
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(HERE))
    spec = importlib.util.spec_from_file_location("bench_run", HERE / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    sys.path.remove(str(HERE))


def test_plan_and_who_runs_what(bench):
    args = bench.parse_args(["--dtypes", "fp32,bf16", "--scale", "1000,10000", "--skip", "decode"])
    groups = bench.plan(args, [1000, 10000])
    assert groups[0] == ("speed", ["encode:fp32", "hyde:fp32", "encode:bf16", "hyde:bf16"])
    assert ("train", ["train:bf16"]) in groups and ("scale", ["scale:10000"]) in groups
    assert bench.phases_for("official", ["train-ckpt:bf16"], {"official"}) == []  # genembed's option only
    speed = groups[0][1]
    assert bench.phases_for("official", speed, {"genembed", "official"}) == ["encode:fp32", "encode:bf16"]
    assert bench.phases_for("official", ["scale:1000"], {"genembed"}) == []
    assert bench.phases_for("genembed", ["scale:1000"], {"genembed"}) == ["scale:1000"]


def test_bad_scale_impls_are_refused(bench, tmp_path):
    with pytest.raises(SystemExit, match="scale-impls"):
        bench.main(["--scale-impls", "genembed,llm2vec", "--out", str(tmp_path / "never-written")])
    assert not (tmp_path / "never-written").exists()


def worker(impl, phases, **extra):
    return {"impl": impl, "load_s": 1.0, "rss_after_load_mib": 900.0, "phases": phases, **extra}


def test_rows_ratios_and_scaling(bench):
    raw = [
        worker("genembed", {"encode:bf16": {"texts_per_s": 8.0, "texts_per_s_head_cache_off": 6.0, "real_tokens": 1000,
                                            "median_s": 2.0, "flop_per_s": 2e11, "mean_tokens_per_text": 130},
                            "scale:1000": {"seconds": 100.0, "dtype": "bf16", "peak_over_before_mib": 50.0},
                            "scale:10000": {"seconds": 1050.0, "dtype": "bf16", "peak_over_before_mib": 52.0}}),
        worker("official", {"encode:bf16": {"texts_per_s": 4.0, "real_tokens": 800, "median_s": 2.0,
                                            "flop_per_s": 1e11, "mean_tokens_per_text": 100}}),
        {"impl": "official", "error": "boom", "log": "x.log", "phases_requested": "train:bf16", "phases": {}},
    ]
    results, loads, _, errors = bench.collect(raw)
    assert errors and "boom" in errors[0]
    rows = {r["figure"]: r for r in bench.compile_rows(results, {"bf16": 4e11, "fp32": 2e11}, ["bf16"],
                                                       [1000, 10000], loads)}
    assert rows["encode throughput [bf16]"]["ratio"] == pytest.approx(2.0)
    assert rows["encode throughput, genembed's shared-head cache off [bf16]"]["ratio"] == pytest.approx(1.5)
    assert rows["encode FLOP/s / bf16 matmul peak [bf16]"]["genembed"] == pytest.approx(50.0)
    assert rows["encode 10000 texts [bf16]"]["official"] is None  # genembed-only scaling: no ratio
    assert rows["training step, both losses [bf16]"]["ratio"] is None
    (summary,) = bench.scaling_summary(results, [1000, 10000])
    assert summary["impl"] == "genembed" and summary["linearity"] == pytest.approx(1.05)


def test_resume_keeps_what_was_measured(bench, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    kept = worker("genembed", {"encode:fp32": {"texts_per_s": 3.0}})
    (raw / "genembed__encode-fp32.json").write_text(__import__("json").dumps(kept))
    args = bench.parse_args(["--resume", "--out", str(tmp_path)])
    assert bench.run_worker("genembed", ["encode:fp32"], tmp_path / "inputs.json", tmp_path, args) == kept


def test_the_equality_check_compares_both_implementations_embeddings(bench, tmp_path):
    """The benchmark's own proof that it measures one model: both workers' fp32 embeddings of the first
    batch, compared; missing or mis-shaped files are reported, never scored."""
    import numpy as np

    args = bench.parse_args([])
    planned = bench.with_equality(bench.plan(args, []), args)
    assert planned[0][0] == "speed" and planned[0][1][0] == "equality"
    assert bench.with_equality([], bench.parse_args(["--skip", "equality"])) == []
    (tmp_path / "raw").mkdir()
    g = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)
    np.save(tmp_path / "raw" / "g.npy", g)
    np.save(tmp_path / "raw" / "o.npy", g + np.float32(1e-6))
    raw = [{"impl": "genembed", "phases": {"equality": {"embeddings": "g.npy"}}},
           {"impl": "official", "phases": {"equality": {"embeddings": "o.npy"}}}]
    eq = bench.equality(raw, tmp_path)
    assert eq["texts"] == 2 and eq["max_abs_diff"] == pytest.approx(1e-6, rel=0.1) and eq["min_cosine"] > 0.999999
    np.save(tmp_path / "raw" / "o.npy", np.zeros((3, 2), dtype=np.float32))
    assert "shapes differ" in bench.equality(raw, tmp_path)["error"]
    assert bench.equality(raw[:1], tmp_path) is None  # one side missing: no figure
