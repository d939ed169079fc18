import json

import numpy as np
from typer.testing import CliRunner

from genembed.checkpoint import save_checkpoint
from genembed.cli import app

runner = CliRunner()


def test_encode_and_decode_commands(tiny_model, tmp_path):
    ckpt = save_checkpoint(tiny_model, tmp_path / "ckpt")
    out = tmp_path / "new-folder" / "vectors.npy"  # a missing folder is created
    result = runner.invoke(app, ["encode", "paris", "how do I boil an egg", "--model", str(ckpt), "--out", str(out)])
    assert result.exit_code == 0, result.output
    vectors = np.load(out)
    assert vectors.shape == (2, 16) and vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, tiny_model.encode(["paris", "how do I boil an egg"]), atol=1e-6)

    jsonl = tmp_path / "texts.jsonl"
    jsonl.write_text("".join(json.dumps({"text": t}) + "\n" for t in ["a", "b", "c"]))
    result = runner.invoke(app, ["encode", "--input", str(jsonl), "--model", str(ckpt), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert np.load(out).shape == (3, 16)

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
