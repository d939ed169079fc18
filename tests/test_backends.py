"""The onnx and openvino backends (backends.py, onnx_export.py) on the tiny llama: the same embeddings and
the same greedy decodes as torch, one export reused, bad exports rebuilt with the reason, clear refusals."""
from __future__ import annotations

import importlib.util
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import genembed
from genembed import backends
from genembed.checkpoint import save_checkpoint
from genembed.decoders import generate
from genembed.onnx_export import export_folder

pytest.importorskip("onnxruntime")
TEXTS = ["how do I boil an egg", "paris is the capital of france", "write a poem about the sea and the wide blue deep",
         "it adjusts weights"]


@pytest.fixture(autouse=True)
def own_cache(tmp_path_factory, monkeypatch):
    """One export cache for this module (exports take seconds), apart from the user's."""
    monkeypatch.setenv("GENEMBED_CACHE", str(tmp_path_factory.getbasetemp() / "onnx-cache"))
    yield
    backends._runtimes.clear()  # the next test attaches afresh (and checks the folder again)


def on(model, name):
    return model.set_backend(name)


HAS_OPENVINO = importlib.util.find_spec("openvino") is not None
FAST = ["onnx", pytest.param("openvino", marks=pytest.mark.skipif(not HAS_OPENVINO, reason="openvino not installed"))]


@pytest.mark.parametrize("name", FAST)
def test_the_fast_backends_embed_as_torch_does(tiny_model, name):
    reference = on(tiny_model, "torch").encode(TEXTS, batch_size=3)
    fast = on(tiny_model, name).encode(TEXTS, batch_size=3)
    assert tiny_model.backend == name and tiny_model.runtime is not None
    np.testing.assert_allclose(fast, reference, atol=2e-5, rtol=0)
    one = tiny_model.encode(TEXTS[2])  # a batch of one: no shared prompt head
    np.testing.assert_allclose(one, reference[2], atol=2e-5, rtol=0)
    assert tiny_model.prefix_cache.entries  # the shared head ran through onnx and was kept
    with torch.enable_grad():  # training-style calls stay in torch and keep their gradients
        soft, emb = tiny_model(*tiny_model.tokenize(TEXTS[:2]))
    assert emb.requires_grad


@pytest.mark.parametrize("name", FAST)
def test_greedy_decodes_are_the_same_on_every_backend(tiny_model, name):
    ids, mask = tiny_model.tokenize(TEXTS)
    with torch.no_grad():
        soft = tiny_model(ids, mask)[0]
    prompts = [tiny_model.backbone.tokenizer(t)["input_ids"] for t in TEXTS]  # token ids of unequal lengths
    reference = [generate(on(tiny_model, "torch"), p, 12, batch_size=4) for p in (soft, prompts)]
    fast = [generate(on(tiny_model, name), p, 12, batch_size=4) for p in (soft, prompts)]
    assert fast == reference
    assert any(reference[1])  # something was written


@pytest.mark.parametrize("name", FAST)
def test_encode_copies_out_only_the_states_it_uses(tiny_model, name, monkeypatch):
    """An encode call without use_cache asks its session for the last-layer states alone; the new keys and
    values (1.4 MiB a position for 32 rows of SmolLM2: 30 layers × 2 × 3 heads × 64 floats a row) are
    copied out only for the prefix cache."""
    runtime = on(tiny_model, name).runtime
    asked = []

    class Recording:
        def __init__(self, session):
            self.session = session

        def run(self, names, feed):
            out = self.session.run(names, feed)
            asked.append((names, len(out)))
            return out

    session = runtime.session

    def recording(role):
        found, names = session(role)
        return Recording(found), names

    monkeypatch.setattr(runtime, "session", recording)
    reference = on(tiny_model, name).encode(TEXTS, batch_size=4)
    layers = runtime.manifest["layers"]
    assert (["hidden"], 1) in asked  # the rows after the shared head
    assert (None, 1 + 2 * layers) in asked  # the shared head itself, kept in the prefix cache
    assert all(names in (None, ["hidden"]) for names, _ in asked)
    monkeypatch.undo()
    np.testing.assert_allclose(on(tiny_model, "torch").encode(TEXTS, batch_size=4), reference, atol=2e-5, rtol=0)


def test_the_sessions_do_not_spin_wait_between_calls(tiny_model):
    """Decoding alternates two sessions with a thread pool each: a pool left spinning after its call takes a
    core from the other one (on 2 cores a decode step took 83 ms instead of 44)."""
    on(tiny_model, "onnx")
    for role in ("encode", "decode", "head"):
        session, _ = tiny_model.runtime.session(role)
        assert session.get_session_options().get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_one_export_serves_every_later_load(tiny_model, capsys):
    on(tiny_model, "onnx")
    folder = export_folder(tiny_model.backbone)
    stamp = (folder / "manifest.json").stat().st_mtime_ns
    capsys.readouterr()  # what the first load printed (it exports when it runs first)
    backends._runtimes.clear()
    on(tiny_model, "onnx")
    assert (folder / "manifest.json").stat().st_mtime_ns == stamp
    assert "exporting" not in capsys.readouterr().out


def test_two_onnxruntime_versions_sharing_a_cache_keep_their_own_export(tiny_model, monkeypatch, capsys):
    """Two environments with one cache and different onnxruntime versions: each builds its export once,
    and then each loads its own without rebuilding the other's."""
    import onnxruntime

    def attach_as(version):
        monkeypatch.setattr(onnxruntime, "__version__", version)
        backends._runtimes.clear()
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a rebuild would warn
            on(tiny_model, "onnx")
        return export_folder(tiny_model.backbone), capsys.readouterr().out

    folders = {}
    for version in ("1.32.0", "1.23.0+cpu"):
        folders[version], _ = attach_as(version)
    assert folders["1.32.0"] != folders["1.23.0+cpu"]
    assert folders["1.32.0"].name.endswith("-ort1.32.0") and folders["1.23.0+cpu"].name.endswith("-ort1.23.0_cpu")
    stamps = {v: (f / "manifest.json").stat().st_mtime_ns for v, f in folders.items()}
    for version in ("1.32.0", "1.23.0+cpu", "1.32.0"):
        folder, printed = attach_as(version)
        assert folder == folders[version] and "exporting" not in printed
        assert json.loads((folder / "manifest.json").read_text())["onnxruntime"] == version
    assert {v: (f / "manifest.json").stat().st_mtime_ns for v, f in folders.items()} == stamps
    monkeypatch.undo()
    assert tiny_model.encode(TEXTS[:1]).shape == (1, tiny_model.config.embedding_dim)  # a fake version's export runs


def _damage_manifest(folder: Path, **changes):
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest.update(changes)
    (folder / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("damage, reason", [
    (lambda f: _damage_manifest(f, weights_sha256="0" * 64), "other backbone weights"),
    (lambda f: _damage_manifest(f, onnxruntime="0.0.1"), "made with onnxruntime 0.0.1"),
    (lambda f: _damage_manifest(f, format=99), "export format 99"),
    (lambda f: (f / "manifest.json").write_text("{not json"), "manifest.json is corrupt"),
    (lambda f: (f / "head.onnx.data").write_bytes(b"\0" * 10), "head.onnx.data is corrupt"),
    (lambda f: (f / "body.onnx").unlink(), "body.onnx is missing"),
])
def test_a_bad_export_is_rebuilt_saying_why(tiny_model, damage, reason):
    reference = on(tiny_model, "torch").encode(TEXTS)
    on(tiny_model, "onnx")
    damage(export_folder(tiny_model.backbone))
    backends._runtimes.clear()
    with pytest.warns(UserWarning, match=f"rebuilding the ONNX export.*{reason}"):
        on(tiny_model, "onnx")
    np.testing.assert_allclose(tiny_model.encode(TEXTS), reference, atol=2e-5, rtol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # rebuilt whole: the next load finds nothing wrong
        backends._runtimes.clear()
        on(tiny_model, "onnx")


@pytest.mark.skipif(not HAS_OPENVINO, reason="openvino not installed")
def test_openvino_runs_in_bf16_under_bf16_autocast_where_bf16_is_native(tiny_model):
    from genembed.backbone import bf16_is_native

    on(tiny_model, "openvino").encode(TEXTS, batch_size=3)  # the prefix cache warm, as for the calls after
    reference = tiny_model.encode(TEXTS, batch_size=3)
    assert tiny_model.runtime.session("encode")[0].compiled.get_property("INFERENCE_PRECISION_HINT").to_string() == "f32"
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        low = tiny_model.encode(TEXTS, batch_size=3, bf16=True)
    assert any("runs in float32 instead" in str(w.message) for w in said) == (not bf16_is_native())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        compiled = tiny_model.runtime.session("encode")[0].compiled
    want = "bf16" if bf16_is_native() else "f32"  # no emulated bf16: float32 is the faster path there
    assert compiled.get_property("INFERENCE_PRECISION_HINT").to_string() == want
    cosine = (low * reference).sum(1) / np.linalg.norm(low, axis=1) / np.linalg.norm(reference, axis=1)
    assert cosine.min() > 0.99
    if want == "bf16":
        assert np.abs(low - reference).max() > 1e-6  # it really ran in another precision
    np.testing.assert_array_equal(tiny_model.encode(TEXTS, batch_size=3), reference)  # float32 again after it


def test_bf16_that_cannot_run_warns_once_naming_the_backend(tiny_model, monkeypatch):
    """onnx runs float32 only: bf16 asked of it warns once per loaded model, and the float32 result comes back."""
    reference = on(tiny_model, "onnx").encode(TEXTS, batch_size=3)
    with pytest.warns(UserWarning, match=r"bf16 was asked for on the onnx backend; it runs in float32 instead "
                                         r"\(onnxruntime runs the export in float32 only\)"):
        low = tiny_model.encode(TEXTS, batch_size=3, bf16=True)
    np.testing.assert_array_equal(low, reference)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once: the next bf16 call, and torch's bf16, say nothing
        tiny_model.encode(TEXTS, batch_size=3, bf16=True)
        on(tiny_model, "torch").encode(TEXTS[:1], bf16=True)
    if HAS_OPENVINO:  # openvino on a CPU without native bf16 says so too
        from genembed import backbone

        monkeypatch.setattr(backbone, "bf16_is_native", lambda device=None: False)
        with pytest.warns(UserWarning, match=r"on the openvino backend; it runs in float32 instead \(this CPU has no "
                                             r"native bf16, AVX-512 BF16 or AMX"):
            on(tiny_model, "openvino").encode(TEXTS, batch_size=3, bf16=True)
        monkeypatch.setattr(backbone, "bf16_is_native", lambda device=None: True)
        assert tiny_model.runtime.bf16_unavailable() is None  # where it has it, bf16 runs: nothing to say


def test_unknown_backends_and_missing_packages_are_named(tiny_model, monkeypatch):
    with pytest.raises(ValueError, match="unknown backend 'tensorrt': choose one of torch, onnx, openvino"):
        genembed.load("no/such-model-is-loaded-first", backend="tensorrt")
    monkeypatch.setitem(sys.modules, "openvino", None)  # as if not installed
    with pytest.raises(ImportError, match=r"pip install 'genembed\[openvino\]'"):
        on(tiny_model, "openvino")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ImportError, match=r"pip install 'genembed\[onnx\]'"):
        on(tiny_model, "onnx")
    assert tiny_model.backend == "torch"  # a refused switch leaves the model as it was


def test_the_commands_take_backend(tiny_model, tmp_path):
    from genembed.cli import app

    ckpt = save_checkpoint(on(tiny_model, "torch"), tmp_path / "ckpt")
    runner = CliRunner()
    outs = {}
    for name in ("torch", "onnx"):
        outs[name] = tmp_path / f"{name}.npy"
        result = runner.invoke(app, ["encode", *TEXTS, "--model", str(ckpt), "--out", str(outs[name]),
                                     "--backend", name])
        assert result.exit_code == 0, result.output
    np.testing.assert_allclose(np.load(outs["onnx"]), np.load(outs["torch"]), atol=2e-5, rtol=0)
    decoded = {name: runner.invoke(app, ["decode", "paris", "--model", str(ckpt), "--via", "soft-prompt",
                                         "--max-new-tokens", "5", "--backend", name]).output
               for name in ("torch", "onnx")}
    assert decoded["onnx"] == decoded["torch"] and "decoded:" in decoded["torch"]
    if HAS_OPENVINO:  # the fast path as a user asks for it
        from genembed.backbone import bf16_is_native

        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            result = runner.invoke(app, ["encode", *TEXTS, "--model", str(ckpt), "--out", str(tmp_path / "ov.npy"),
                                         "--backend", "openvino", "--bf16"])
        assert result.exit_code == 0, result.output
        assert any("runs in float32 instead" in str(w.message) for w in said) == (not bf16_is_native())
        low, ref = np.load(tmp_path / "ov.npy"), np.load(outs["torch"])
        assert ((low * ref).sum(1) / np.linalg.norm(low, axis=1) / np.linalg.norm(ref, axis=1)).min() > 0.99
    result = runner.invoke(app, ["encode", "x", "--model", str(ckpt), "--backend", "fast"])
    assert result.exit_code != 0 and "unknown backend 'fast'" in str(result.exception)


def test_serve_runs_a_given_model_on_the_backend_asked_for(tiny_model, monkeypatch):
    pytest.importorskip("fastapi")
    import uvicorn

    from genembed.serve import serve

    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: None)  # build the app, do not listen
    serve(on(tiny_model, "torch"), backend="onnx")
    assert tiny_model.backend == "onnx"
    serve(tiny_model)  # no backend asked for: the model keeps its own
    assert tiny_model.backend == "onnx"
