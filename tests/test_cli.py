import json
import subprocess
import sys
from functools import partial

import numpy as np
from typer.testing import CliRunner

from genembed.checkpoint import save_checkpoint
from genembed.cli import app
from genembed.inspection import logit_lens

runner = CliRunner()


def test_encode_and_decode_commands(tiny_model, tmp_path):
    ckpt = save_checkpoint(tiny_model, tmp_path / "ckpt")
    out = tmp_path / "new-folder" / "vectors.npy"  # a missing folder is created
    result = runner.invoke(app, ["encode", "paris", "how do I boil an egg", "--model", str(ckpt), "--out", str(out)])
    assert result.exit_code == 0, result.output
    vectors = np.load(out)
    assert vectors.shape == (2, 32) and vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, tiny_model.encode(["paris", "how do I boil an egg"]), atol=1e-6)

    jsonl = tmp_path / "texts.jsonl"
    jsonl.write_text("".join(json.dumps({"text": t}) + "\n" for t in ["a", "b", "c"]))
    result = runner.invoke(app, ["encode", "--input", str(jsonl), "--model", str(ckpt), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert np.load(out).shape == (3, 32)

    result = runner.invoke(app, ["decode", "paris", "--model", str(ckpt), "--max-new-tokens", "3"])
    assert result.exit_code == 0, result.output
    assert "decoded:" in result.output


def test_bad_input_is_named(tiny_model, tmp_path):
    ckpt = save_checkpoint(tiny_model, tmp_path / "ckpt")
    result = runner.invoke(app, ["encode", "--model", str(ckpt)])
    assert result.exit_code != 0 and "no texts" in result.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"txt": "wrong key"}\n')
    result = runner.invoke(app, ["encode", "--input", str(bad), "--model", str(ckpt)])
    assert result.exit_code != 0 and "bad.jsonl:2" in result.output and "'text'" in result.output
    result = runner.invoke(app, ["encode", "x", "--model", str(tmp_path / "missing")])
    assert result.exit_code != 0
    assert "not found" in str(result.exception) or "not found" in result.output


def test_decode_and_inspect_take_what_encode_takes(tiny_model, tmp_path):
    ckpt = save_checkpoint(tiny_model, tmp_path / "ckpt")
    texts = tmp_path / "texts.txt"
    texts.write_text("paris\nhow do I boil an egg\n")
    for command in ("decode", "inspect"):
        result = runner.invoke(app, [command, "--input", str(texts), "--model", str(ckpt), "--max-new-tokens", "2"])
        assert result.exit_code == 0, result.output
        assert result.output.count("decoded:") == 2 and "input:   how do I boil an egg" in result.output
        result = runner.invoke(app, [command, "--model", str(ckpt)])
        assert result.exit_code != 0 and "no texts" in result.output
        bad = tmp_path / "bad.jsonl"
        bad.write_text('{"text": "ok"}\n{"txt": "wrong key"}\n')
        result = runner.invoke(app, [command, "--input", str(bad), "--model", str(ckpt)])
        assert result.exit_code != 0 and "bad.jsonl:2" in result.output
        result = runner.invoke(app, [command, "paris", "--model", str(ckpt), "--colour", "red"])
        assert result.exit_code != 0 and "--colour" in result.output
    assert "c0" in runner.invoke(app, ["inspect", "paris", "a", "--model", str(ckpt)]).output


def test_decode_and_logit_lens_refuse_bad_input_like_encode(tiny_model):
    import pytest

    for call in (tiny_model.decode, partial(logit_lens, tiny_model)):
        with pytest.raises(ValueError, match="empty list"):
            call([])
        with pytest.raises(TypeError, match="expects strings"):
            call(["ok", 3])
        with pytest.raises(TypeError):
            call(["ok"], pooling="mean")
    with pytest.raises(ValueError, match="max_new_tokens"):
        tiny_model.decode("ok", max_new_tokens=0)
    lens = logit_lens(tiny_model, ["paris", "an egg"], top_k=2)
    assert len(lens) == 2 and len(lens[0]) == tiny_model.config.num_compression_tokens and len(lens[0][0]) == 2
    assert logit_lens(tiny_model, "paris", top_k=2) == lens[0]


def test_benchmark_command_scores_a_checkpoint_and_resumes(tiny_model, tmp_path):
    """`genembed benchmark` on one real task (WordSim353, from the installed gensim package): a score,
    the table and the plot; a second call with another task keeps the first score."""
    ckpt = save_checkpoint(tiny_model, tmp_path / "ckpt")
    out = tmp_path / "bench"
    args = ["benchmark", "--model", str(ckpt), "--no-default", "--baselines", "", "--out", str(out)]
    result = runner.invoke(app, args + ["--tasks", "wordsim353"])
    assert result.exit_code == 0, result.output
    first = json.loads((out / "results.json").read_text())["methods"]
    (name,) = first
    assert -1 <= first[name]["wordsim353"]["spearman"] <= 1
    assert "## Selection set" in (out / "results.md").read_text() and (out / "results.png").exists()
    result = runner.invoke(app, args + ["--tasks", "wordsim353,simlex999"])
    assert result.exit_code == 0, result.output
    second = json.loads((out / "results.json").read_text())["methods"][name]
    assert second["wordsim353"] == first[name]["wordsim353"] and "simlex999" in second
    result = runner.invoke(app, args + ["--set", "test"])
    assert result.exit_code != 0 and "unknown set" in str(result.exception)


def test_eval_runs_bf16_only_where_native_and_on_the_backend_asked(monkeypatch, tmp_path):
    """`genembed eval` once ran every method in bf16 autocast on any machine: emulated on an AVX2 CPU,
    the default's Q→A task took 43 min. It takes --bf16/--no-bf16 and --backend as `genembed benchmark` does."""
    import genembed.backbone
    import genembed.eval.suite as suite
    from genembed.eval.methods import Student

    monkeypatch.setattr(genembed.backbone, "bf16_is_native", lambda: False)
    seen = []

    def build_methods(models, baselines, include_default, ridge_responses, hyde_tasks, cache_dir, bf16, backend):
        seen.extend([("bf16", bf16), ("backend", backend)])
        return [Student(None, "tiny", bf16=bf16)]

    monkeypatch.setattr(suite, "build_methods", build_methods)
    monkeypatch.setattr(suite, "evaluate", lambda methods, tasks, out_dir, **kw: (out_dir / "results.md").write_text("table"))
    for args, expected in [([], [("bf16", False), ("backend", "torch")]),
                           (["--bf16", "--backend", "onnx"], [("bf16", True), ("backend", "onnx")])]:
        seen.clear()
        result = runner.invoke(app, ["eval", "--baselines", "", "--out", str(tmp_path), *args])
        assert result.exit_code == 0, result.output
        assert seen == expected
    result = runner.invoke(app, ["eval", "--backend", "tensorrt", "--out", str(tmp_path)])
    assert result.exit_code != 0 and "unknown backend 'tensorrt'" in str(result.exception)


def test_python_dash_m_runs_the_command_with_its_error_handling(tmp_path):
    """`python -m genembed` (a source checkout on PYTHONPATH, where the script is not installed: the GPU
    machine) is the same command, with the same one-line errors."""
    def run(*args):
        return subprocess.run([sys.executable, "-m", "genembed", *args], capture_output=True, text=True, timeout=120)

    result = run("train", "--help")
    assert result.returncode == 0 and "--responses" in result.stdout
    result = run("train", "--responses", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "run"))
    assert result.returncode == 2 and "missing.jsonl" in result.stderr and "Traceback" not in result.stderr
