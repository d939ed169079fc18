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

    def build_methods(models, baselines, include_default, ridge_responses, hyde_tasks, cache_dir, bf16, backend,
                      teacher=None):
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


def error_lines(err):
    return [line for line in err.splitlines() if line.strip() and "Loading weights" not in line]


def test_every_user_error_is_one_line_on_stderr_and_exit_code_2(tiny_model, tmp_path, monkeypatch, capsys, run_cli):
    """Usage errors, file errors and library errors alike: `error: ...` on one line (no box, no wrapped
    path), whatever the command."""
    ckpt = str(save_checkpoint(tiny_model, tmp_path / "ckpt"))
    deep = tmp_path / ("a-rather-long-folder-name-" * 4) / "texts.jsonl"
    deep.parent.mkdir()
    deep.write_text('{"text": "ok"}\n{"txt": "wrong key"}\n')
    cases = [
        (["encode", "x", "--model", ckpt, "--colour", "red"], "--colour"),  # click: unknown option
        (["export", "--out", str(tmp_path / "x")], "--model"),  # click: missing option
        (["encode", "x", "--batch-size", "many"], "--batch-size"),  # click: bad type
        (["index", "build", str(deep), "--bogus"], "--bogus"),  # a sub-command's usage error
        (["encode", "--input", str(deep), "--model", ckpt], f"{deep}:2"),  # a file error, its path whole
        (["decode", "--input", str(deep), "--model", ckpt], f"{deep}:2"),
        (["search", str(tmp_path), "a", "-k", "0"], "-k must be >= 1"),
        (["encode", "x", "--model", str(tmp_path / "missing")], "not found"),  # the library's CheckpointError
        (["train", "--responses", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "run")], "none.jsonl"),
    ]
    for args, named in cases:
        code, out, err = run_cli(*args)
        lines = error_lines(err)
        assert code == 2, (args, err)
        assert len(lines) == 1 and lines[0].startswith("error: ") and named in lines[0], (args, err)
        assert "Traceback" not in err and "│" not in err and not out, (args, err)


def test_a_bug_shows_its_traceback_not_an_error_line(monkeypatch, capsys, tmp_path, run_cli):
    """Only a user's mistake (a GenembedError) becomes the one-line error; a ValueError or TypeError
    from a bug propagates (its traceback shows)."""
    import pytest

    import genembed.cli

    for bug in (ValueError("a bug in genembed"), TypeError("another bug")):
        def broken(*args, **kwargs):
            raise bug

        monkeypatch.setattr(genembed.cli, "load", broken)
        with pytest.raises(type(bug), match="bug"):
            run_cli("encode", "x", "--out", str(tmp_path / "v.npy"))


def test_options_are_refused_before_any_model_loads(monkeypatch, capsys, tmp_path, run_cli):
    import pytest

    import genembed.backbone
    import genembed.cli
    import genembed.index
    import genembed.serve

    def no_load(*args, **kwargs):
        pytest.fail("a model was loaded before the options were checked")

    monkeypatch.setattr(genembed.cli, "load", no_load)
    monkeypatch.setattr(genembed.backbone, "load_backbone", no_load)
    monkeypatch.setattr(genembed.index, "build_index", no_load)
    monkeypatch.setattr(genembed.index.Index, "open", no_load)
    monkeypatch.setattr(genembed.serve, "serve", no_load)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a\nb\n")
    cases = [
        (["encode", "x", "--backend", "tensorrt"], "unknown backend 'tensorrt'"),
        (["encode", "x", "--batch-size", "0"], "--batch-size"),
        (["encode", "x", "--batch-size", "-3"], "--batch-size"),
        (["decode", "x", "--via", "telepathy"], "--via"),
        (["decode", "x", "--max-new-tokens", "0"], "--max-new-tokens"),
        (["inspect", "x", "--top-k", "0"], "--top-k"),
        (["search", str(tmp_path), "x", "-k", "0"], "-k"),
        (["search", str(tmp_path), "x", "--backend", "tensorrt"], "unknown backend"),
        (["index", "build", str(corpus), "--out", str(tmp_path / "idx"), "--kind", "ivf"], "--kind"),
        (["index", "build", str(corpus), "--out", str(tmp_path / "idx"), "--batch-size", "0"], "--batch-size"),
        (["export", "--model", "default", "--out", str(tmp_path / "x"), "--format", "gguf"], "--format"),
        (["serve", "--max-batch", "0"], "--max-batch"),
        (["serve", "--backend", "tensorrt"], "unknown backend"),
        (["generate", "--out", str(tmp_path / "r.jsonl"), "--input", str(corpus), "--batch-size", "0"], "--batch-size"),
        (["generate", "--out", str(tmp_path / "r.jsonl"), "--input", str(corpus), "--dtype", "int3"], "--dtype"),
        (["eval", "--backend", "tensorrt", "--out", str(tmp_path / "e")], "unknown backend"),
    ]
    for args, named in cases:
        code, out, err = run_cli(*args)
        assert code == 2 and named in err, (args, err)
        assert len(error_lines(err)) == 1, (args, err)


def test_messages_name_the_real_problem(tiny_model, tmp_path, monkeypatch, capsys, run_cli):
    import pytest

    ckpt = str(save_checkpoint(tiny_model, tmp_path / "ckpt"))
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    code, _, err = run_cli("encode", "--input", str(empty), "--model", ckpt)
    assert code == 2 and f"{empty} holds no texts" in err
    code, _, err = run_cli("encode", "--input", str(tmp_path), "--model", ckpt)
    assert code == 2 and f"{tmp_path} is a folder; a file of texts is expected" in err
    weights = tmp_path / "ckpt" / "model.safetensors"
    code, _, err = run_cli("encode", "x", "--model", str(weights))
    assert code == 2 and f"--model {weights} is a file; a checkpoint folder is expected" in err
    with pytest.raises(TypeError, match="expects a string or a list of strings, got NoneType"):
        tiny_model.encode(None)


def test_a_blank_line_in_a_jsonl_input_stops_the_command_naming_its_line(tiny_model, tmp_path, monkeypatch, capsys, run_cli):
    """Row i is line i in both formats: a .txt blank line is the empty text, a .jsonl blank line an error
    (it once vanished silently: 3 lines gave 2 rows, every later row off its line)."""
    ckpt = str(save_checkpoint(tiny_model, tmp_path / "ckpt"))
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"text": "a"}\n\n{"text": "b"}\n')
    code, _, err = run_cli("encode", "--input", str(rows), "--model", ckpt,
                            "--out", str(tmp_path / "v.npy"))
    assert code == 2 and f"{rows}:2: blank line" in err and '{"text": ""}' in err
    assert not (tmp_path / "v.npy").exists()
    lines = tmp_path / "lines.txt"
    lines.write_text("a\n\nb\n")
    code, _, err = run_cli("encode", "--input", str(lines), "--model", ckpt,
                            "--out", str(tmp_path / "v.npy"))
    assert code == 0 and np.load(tmp_path / "v.npy").shape[0] == 3


def commands(group=None, path=()):
    """(name path, click command) of every command of the app, sub-commands included."""
    import typer.main

    group = typer.main.get_command(app) if group is None else group
    for name, command in group.commands.items():
        if getattr(command, "commands", None):
            yield from commands(command, (*path, name))
        else:
            yield (*path, name), command


def test_help_shows_what_the_source_says_and_every_option_has_help():
    """Every command's --help shows each option's help as written (rich markup once dropped every
    [bracketed] word: pip install 'genembed' instead of 'genembed[onnx]')."""
    import re

    def flat(text):  # the help wraps lines, at spaces and after hyphens
        return re.sub(r"-\s+", "-", " ".join(text.split()))

    seen = set()
    for path, command in commands():
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        shown = flat(result.output)
        for param in command.params:
            if param.param_type_name != "option" or param.name == "help":
                continue
            assert (param.help or "").strip(), f"{' '.join(path)} {param.opts[0]} has no help"
            assert flat(param.help) in shown, (path, param.opts[0])
        assert flat((command.help or "").split("\n\n")[0]) in shown, path
        seen |= {word for word in ("genembed[onnx]", "genembed[openvino]", "[n, dim]") if word in shown}
    assert seen == {"genembed[onnx]", "genembed[openvino]", "[n, dim]"}
    assert {("encode",), ("decode",), ("index", "build"), ("train",)} <= {p for p, _ in commands()}
