"""genembed.teacher_build (`genembed teacher build`): the MNTP masking and shift, both losses falling, a build
stopped or killed and resumed reaching the uninterrupted build's weights, the written folders read by
genembed.teachers and by the llm2vec package itself (live, in .venv-llm2vec), and one error per bad setting."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from genembed.bidirectional import BidirectionalError
from genembed.errors import GenembedError
from genembed.jsonl import read_rows
from genembed.teacher_build import TeacherBuildConfig, build_teacher
from genembed.teacher_build.config import TeacherBuildError
from genembed.teacher_build.layout import PEFT_013_KEYS
from genembed.teacher_build.objectives import (IGNORE, mask_token_id, mask_tokens, mean_pool_last, mntp_loss,
                                               simcse_loss)
from genembed.testing import CORPUS

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_BASE = ROOT / "tests" / "fixtures" / "llm2vec" / "base"
SIDE_VENV = ROOT / ".venv-llm2vec" / "bin" / "python"
TEXTS = sorted(set(CORPUS))  # ten distinct sentences


@pytest.fixture(scope="module")
def texts_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("texts") / "texts.txt"
    path.write_text("\n".join(TEXTS) + "\n")
    return path


def config(backbone, texts_file, out, **kw):
    base = dict(out_dir=str(out), backbone=str(backbone), texts=str(texts_file), mntp_steps=5, mntp_batch_size=4,
                mntp_max_length=16, simcse_steps=4, simcse_batch_size=4, simcse_max_length=16, save_every=2,
                lora_r=4, mntp_lr=2e-2, simcse_lr=2e-2)
    base.update(kw)
    return TeacherBuildConfig(**base)


def adapters(out: Path) -> dict:
    return {name: load_file(str(out / name / "adapter_model.safetensors")) for name in ("mntp", "simcse")}


# -- MNTP: masking and the next-token shift --------------------------------------------------------------
def test_masking_labels_only_the_chosen_positions():
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(10, 500, (200, 200), generator=gen)
    special = torch.zeros_like(ids, dtype=torch.bool)
    special[:, 50] = True  # e.g. an EOS between two texts
    inputs, labels = mask_tokens(ids, special, 0.2, mask_id=7, vocab_size=500, generator=torch.Generator().manual_seed(1))
    chosen = labels != IGNORE
    assert torch.equal(labels[chosen], ids[chosen])  # a chosen position's label is its own original token
    assert not chosen[:, 0].any() and not chosen[special].any()  # never the first position, never a special token
    assert torch.equal(inputs[~chosen], ids[~chosen])  # nothing else is touched
    share = chosen.float().sum() / (ids.numel() - special.sum() - 200)
    assert abs(share.item() - 0.2) < 0.01
    masked = (inputs[chosen] == 7).float().mean().item()
    kept = (inputs[chosen] == ids[chosen]).float().mean().item()
    assert abs(masked - 0.8) < 0.02 and abs(kept - 0.1) < 0.02  # the rest (~10%) became random tokens
    again = mask_tokens(ids, special, 0.2, 7, 500, torch.Generator().manual_seed(1))
    assert torch.equal(again[0], inputs) and torch.equal(again[1], labels)  # a function of the generator's seed


def test_the_label_of_position_i_is_read_from_the_state_at_i_minus_1():
    torch.manual_seed(0)
    hidden = torch.randn(2, 6, 8, requires_grad=True)
    head = torch.nn.Linear(8, 11)
    labels = torch.full((2, 6), IGNORE)
    labels[0, 3], labels[1, 5] = 5, 2
    loss, count, _ = mntp_loss(hidden, labels, head)
    want = (torch.nn.functional.cross_entropy(head(hidden[0, 2])[None], torch.tensor([5]))
            + torch.nn.functional.cross_entropy(head(hidden[1, 4])[None], torch.tensor([2]))) / 2
    assert count == 2 and torch.allclose(loss, want)
    loss.backward()
    touched = hidden.grad.abs().sum(-1) > 0
    assert touched.nonzero().tolist() == [[0, 2], [1, 4]]  # only the states one before the labelled tokens


def test_the_mask_token():
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(FIXTURE_BASE)
    assert tokenizer.mask_token is None
    assert mask_token_id(tokenizer) == tokenizer.convert_tokens_to_ids("_")  # the original's "blank" mask
    tokenizer.add_special_tokens({"mask_token": "<mask>"})
    assert mask_token_id(tokenizer) == tokenizer.mask_token_id


def _repeat(phase, lr: float, steps: int) -> list[float]:
    """The losses of `steps` optimiser steps on step 0's batch (same masking, same dropout) again and again."""
    optimizer = torch.optim.AdamW(phase.trainable, lr=lr)
    losses = []
    for _ in range(steps):
        losses.append(phase.step(0)["loss"])
        optimizer.step()
        optimizer.zero_grad()
    return losses


def test_mntp_loss_falls_on_a_repeated_batch(tiny_backbone_path, texts_file, tmp_path):
    from genembed.teacher_build.phases import MNTPPhase

    cfg = config(tiny_backbone_path, texts_file, tmp_path / "x", mntp_micro_batch=3)
    losses = _repeat(MNTPPhase(cfg, TEXTS, tiny_backbone_path), lr=3e-2, steps=12)
    assert losses[-1] < 0.5 * losses[0], losses


def test_micro_batches_and_checkpointing_compute_the_same_step(tiny_backbone_path, texts_file, tmp_path):
    """Gradient checkpointing (a build may resume under the other value) changes how a step is computed, not
    what: the same loss and gradients up to rounding; so do micro-batches, up to the LoRA dropout's draws."""
    from genembed.teacher_build.phases import MNTPPhase

    def gradients(**kw):
        phase = MNTPPhase(config(tiny_backbone_path, texts_file, tmp_path / "x", **kw), TEXTS, tiny_backbone_path)
        loss = phase.step(1)["loss"]
        return loss, torch.cat([p.grad.flatten() for p in phase.trainable])

    for base, other in ((dict(), dict(gradient_checkpointing=True)),
                        (dict(lora_dropout=0.0), dict(lora_dropout=0.0, mntp_micro_batch=1))):
        (loss, grads), (other_loss, other_grads) = gradients(**base), gradients(**other)
        assert grads.abs().max() > 0
        assert abs(other_loss - loss) < 1e-5 and torch.allclose(other_grads, grads, atol=1e-6), other


# -- SimCSE -------------------------------------------------------------------------------------------
def test_pooling_and_the_contrastive_loss():
    hidden = torch.arange(2 * 4 * 3, dtype=torch.float32).view(2, 4, 3)
    pooled = mean_pool_last(hidden, torch.tensor([2, 4]))
    assert torch.allclose(pooled, torch.stack([hidden[0, 2:].mean(0), hidden[1].mean(0)]))
    a = torch.eye(4)
    assert simcse_loss(a, a, 0.05) < 1e-6  # each text finds its own second view
    assert simcse_loss(a, a.roll(1, 0), 0.05) > 10  # ... and not another text's
    assert torch.isclose(simcse_loss(a, torch.ones(4, 4), 0.05), torch.log(torch.tensor(4.0)))


def test_simcse_loss_falls(tiny_backbone_path, texts_file, tmp_path):
    from genembed.teacher_build.phases import MNTPPhase, SimCSEPhase

    cfg = config(tiny_backbone_path, texts_file, tmp_path / "x", mntp_steps=0, temperature=1.0, simcse_batch_size=8)
    MNTPPhase(cfg, TEXTS, tiny_backbone_path).write(tmp_path / "mntp")  # an untrained (identity) adapter
    losses = _repeat(SimCSEPhase(cfg, TEXTS, tiny_backbone_path, tmp_path / "mntp"), lr=3e-2, steps=12)
    assert losses[-1] < 0.8 * losses[0], losses


# -- the build: layout, resume ----------------------------------------------------------------------------
def test_the_build_is_an_llm2vec_teacher(tiny_backbone_path, texts_file, tmp_path):
    from genembed.teachers import LLM2VecTeacher, load_teacher

    out = tmp_path / "build"
    spec = build_teacher(config(tiny_backbone_path, texts_file, out), show_progress_bar=False)
    assert spec == f"{out / 'mntp'}+{out / 'simcse'}"
    for name in ("mntp", "simcse"):
        adapter_config = json.loads((out / name / "adapter_config.json").read_text())
        assert set(adapter_config) <= PEFT_013_KEYS and adapter_config["peft_type"] == "LORA"
        assert adapter_config["r"] == 4 and adapter_config["lora_alpha"] == 8
        assert json.loads((out / name / "llm2vec_config.json").read_text())["pooling_mode"] == "mean"
    assert json.loads((out / "mntp" / "adapter_config.json").read_text())["base_model_name_or_path"] == \
        str(Path(tiny_backbone_path).resolve())
    assert {"config.json", "tokenizer.json", "tokenizer_config.json"} <= {p.name for p in (out / "mntp").iterdir()}
    log = read_rows(out / "log.jsonl")
    assert [(r["phase"], r["step"]) for r in log] == [("mntp", s) for s in range(5)] + [("simcse", s) for s in range(4)]
    assert (out / "mntp-loss.png").stat().st_size > 1000 and (out / "simcse-loss.png").stat().st_size > 1000
    assert not (out / "resume").exists()

    teacher = load_teacher(spec)
    assert isinstance(teacher, LLM2VecTeacher)
    vectors = teacher.embed(TEXTS[:4])
    assert vectors.shape == (4, 32) and np.isfinite(vectors).all()
    # each phase changed the model: the teacher differs from its MNTP half, which differs from the plain base
    mntp_only = load_teacher(str(out / "mntp")).embed(TEXTS[:4])
    plain = load_teacher("llm2vec:" + tiny_backbone_path).embed(TEXTS[:4])
    assert np.abs(vectors - mntp_only).max() > 1e-3 and np.abs(mntp_only - plain).max() > 1e-3

    # a finished build resumed: nothing left to do, nothing rewritten
    before = (out / "simcse" / "adapter_model.safetensors").read_bytes()
    assert build_teacher(config(tiny_backbone_path, texts_file, out), resume=True, show_progress_bar=False) == spec
    assert (out / "simcse" / "adapter_model.safetensors").read_bytes() == before
    assert len(read_rows(out / "log.jsonl")) == 9


class Stop(Exception):
    pass


def _stop_at(phase: str, steps_done: int):
    def hook(name, done):
        if (name, done) == (phase, steps_done):
            raise Stop()
    return hook


def test_a_stopped_build_resumes_to_the_same_weights(tiny_backbone_path, texts_file, tmp_path):
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    build_teacher(config(tiny_backbone_path, texts_file, straight), show_progress_bar=False)
    with pytest.raises(Stop):  # after MNTP step 3: saved at 2, so step 2 runs again
        build_teacher(config(tiny_backbone_path, texts_file, stopped), show_progress_bar=False,
                      on_step=_stop_at("mntp", 3))
    assert not (stopped / "mntp").exists() and (stopped / "resume" / "mntp" / "trainer.pt").exists()
    with pytest.raises(Stop):  # MNTP finishes, SimCSE stops after its first step (before any save)
        build_teacher(config(tiny_backbone_path, texts_file, stopped), resume=True, show_progress_bar=False,
                      on_step=_stop_at("simcse", 1))
    assert (stopped / "mntp" / "adapter_model.safetensors").exists() and not (stopped / "simcse").exists()
    build_teacher(config(tiny_backbone_path, texts_file, stopped), resume=True, show_progress_bar=False)
    want, got = adapters(straight), adapters(stopped)
    for name in want:
        assert want[name].keys() == got[name].keys()
        for key in want[name]:
            assert torch.equal(want[name][key], got[name][key]), (name, key)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(read_rows(stopped / "log.jsonl")) == strip(read_rows(straight / "log.jsonl"))


_KILLED = """
import os, signal, sys
from genembed.teacher_build import TeacherBuildConfig, build_teacher
settings, phase, at = sys.argv[1], sys.argv[2], int(sys.argv[3])
def hook(name, done):
    if (name, done) == (phase, at):
        os.kill(os.getpid(), signal.SIGKILL)
build_teacher(TeacherBuildConfig(**__import__("json").loads(settings)), show_progress_bar=False, on_step=hook)
"""


def test_a_build_killed_with_sigkill_resumes_to_the_same_weights(tiny_backbone_path, texts_file, tmp_path):
    from dataclasses import asdict

    straight, killed = tmp_path / "straight", tmp_path / "killed"
    build_teacher(config(tiny_backbone_path, texts_file, straight), show_progress_bar=False)
    settings = asdict(config(tiny_backbone_path, texts_file, killed, save_every=3))
    run = subprocess.run([sys.executable, "-c", _KILLED, json.dumps(settings), "simcse", "2"], capture_output=True,
                         text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert run.returncode == -9, run.stderr[-2000:]
    assert (killed / "mntp").exists() and not (killed / "simcse").exists()
    build_teacher(config(tiny_backbone_path, texts_file, killed, save_every=3), resume=True, show_progress_bar=False)
    want, got = adapters(straight), adapters(killed)
    for name in want:
        for key in want[name]:
            assert torch.equal(want[name][key], got[name][key]), (name, key)


# -- the llm2vec package reads the build (live, in its own venv) ------------------------------------------
_LIVE = """
import json, sys
from llm2vec import LLM2Vec
first, second, texts = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
encoder = LLM2Vec.from_pretrained(first, peft_model_name_or_path=second, pooling_mode="mean")
print(json.dumps(encoder.encode(texts, batch_size=3, show_progress_bar=False, device="cpu").tolist()))
"""


@pytest.mark.skipif(not SIDE_VENV.exists(), reason="no .venv-llm2vec (bash scripts/llm2vec_env.sh builds it)")
def test_the_llm2vec_package_reads_the_build_the_same_way(texts_file, tmp_path):
    """Built over the fixture's base (written by transformers 4.44, which the package's venv can read; it
    cannot read a transformers-5 model folder)."""
    from genembed.teachers import load_teacher

    base, out = tmp_path / "base", tmp_path / "build"
    shutil.copytree(FIXTURE_BASE, base)
    build_teacher(config(base, texts_file, out), show_progress_bar=False)
    texts = TEXTS[:5] + ["a", "  write a poem about the sea, the wide blue sea, and the deep water under it  "]
    run = subprocess.run([str(SIDE_VENV), "-c", _LIVE, str(out / "mntp"), str(out / "simcse"), json.dumps(texts)],
                         capture_output=True, text=True, timeout=600, cwd=tmp_path,
                         env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    assert run.returncode == 0, run.stderr[-2000:]
    want = np.asarray(json.loads(run.stdout.strip().splitlines()[-1]), dtype=np.float32)
    got = load_teacher(f"{out / 'mntp'}+{out / 'simcse'}").embed(texts)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    assert np.abs(load_teacher(str(out / "mntp")).embed(texts) - want).max() > 1e-3  # the SimCSE adapter acts


# -- refused, with one line naming the problem -------------------------------------------------------------
@pytest.mark.parametrize("change, message", [
    (dict(mask_rate=1.0), r"mask_rate must be between 0 and 1"),
    (dict(mntp_steps=0, simcse_steps=0), r"both 0: nothing would be trained"),
    (dict(simcse_batch_size=1), r"simcse_batch_size must be at least 2"),
    (dict(mntp_micro_batch=9), r"mntp_micro_batch \(9\) is larger than mntp_batch_size \(4\)"),
    (dict(dtype="int8"), r"dtype must be one of"),
    (dict(save_every=0), r"save_every must be an integer >= 1"),
    (dict(texts="/nonexistent/texts.txt"), r"texts file not found: /nonexistent/texts.txt"),
    (dict(temperature=0.0), r"temperature must be > 0"),
])
def test_bad_settings(tiny_backbone_path, texts_file, tmp_path, change, message):
    with pytest.raises(TeacherBuildError, match=message) as error:
        config(tiny_backbone_path, texts_file, tmp_path / "x", **change)
    assert "\n" not in str(error.value) and isinstance(error.value, (GenembedError, ValueError))


def test_bad_folders_and_data(tiny_backbone_path, texts_file, tmp_path):
    out = tmp_path / "build"
    with pytest.raises(TeacherBuildError, match=r"nothing to resume in .*build: no build was started there"):
        build_teacher(config(tiny_backbone_path, texts_file, out), resume=True, show_progress_bar=False)
    # texts too few for the phases: refused before anything is written or trained
    with pytest.raises(TeacherBuildError, match=r"10 distinct texts, fewer than one SimCSE batch \(12\)"):
        build_teacher(config(tiny_backbone_path, texts_file, out, simcse_batch_size=12), show_progress_bar=False)
    with pytest.raises(TeacherBuildError, match=r"fewer than one MNTP block of 4096"):
        build_teacher(config(tiny_backbone_path, texts_file, out, mntp_max_length=4096), show_progress_bar=False)
    assert not out.exists()

    changing = tmp_path / "changing.txt"
    shutil.copy(texts_file, changing)
    with pytest.raises(Stop):
        build_teacher(config(tiny_backbone_path, changing, out), show_progress_bar=False, on_step=_stop_at("mntp", 1))
    with pytest.raises(TeacherBuildError, match=r"already holds something .*pass --resume"):
        build_teacher(config(tiny_backbone_path, changing, out), show_progress_bar=False)
    from genembed.atomic import folder_lock

    with folder_lock(out, "teacher build"):  # a build still running there holds the folder
        with pytest.raises(GenembedError, match=r"build is in use by another teacher build"):
            build_teacher(config(tiny_backbone_path, changing, out), resume=True, show_progress_bar=False)
    with pytest.raises(TeacherBuildError, match=r"was started with other settings \(mntp_lr\)"):
        build_teacher(config(tiny_backbone_path, changing, out, mntp_lr=1e-3), resume=True, show_progress_bar=False)
    changing.write_text("\n".join(TEXTS[1:] + ["another text"]) + "\n")  # the same file, other texts
    with pytest.raises(TeacherBuildError, match=r"the texts \(.*changing.txt\) differ from those .*build was started on"):
        build_teacher(config(tiny_backbone_path, changing, out), resume=True, show_progress_bar=False)


def test_a_family_without_bidirectional_attention_is_refused_before_loading(texts_file, tmp_path):
    from transformers import GPT2Config

    GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50).save_pretrained(tmp_path / "gpt2")
    with pytest.raises(BidirectionalError, match=r"backbone .*gpt2: model_type 'gpt2' has no bidirectional"):
        build_teacher(config(tmp_path / "gpt2", texts_file, tmp_path / "build"), show_progress_bar=False)
    assert not (tmp_path / "build" / "build_config.json").exists()


# -- the command ---------------------------------------------------------------------------------------------
def test_the_command(tiny_backbone_path, texts_file, tmp_path):
    from genembed.cli import app

    runner = CliRunner()
    out = tmp_path / "build"
    args = ["teacher", "build", "--backbone", tiny_backbone_path, "--out", str(out), "--texts", str(texts_file),
            "--mntp-steps", "2", "--mntp-batch-size", "2", "--mntp-max-length", "16", "--simcse-steps", "2",
            "--simcse-batch-size", "4", "--simcse-max-length", "16", "--lora-r", "2"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"teacher: {out / 'mntp'}+{out / 'simcse'}" in result.output
    assert len(read_rows(out / "log.jsonl")) == 4

    help_text = runner.invoke(app, ["teacher", "build", "--help"]).output
    for option in ("--mntp-steps", "--simcse-steps", "--mask-rate", "--temperature", "--simcse-dropout", "--resume"):
        assert option in help_text


def test_the_command_refuses_bad_options_in_one_line(tiny_backbone_path, texts_file, tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "genembed", "teacher", "build", *args], capture_output=True,
                              text=True, timeout=120)

    result = run("--out", str(tmp_path / "b"), "--backbone", tiny_backbone_path, "--mask-rate", "0")
    assert result.returncode == 2 and result.stderr.strip().startswith("error: mask_rate must be between 0 and 1")
    assert len(result.stderr.strip().splitlines()) == 1
    result = run("--out", str(tmp_path / "b"), "--backbone", str(tmp_path / "missing"), "--texts", str(texts_file))
    assert result.returncode == 2 and "missing" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    result = run("--out", str(tmp_path / "b"), "--mntp-steps", "many")
    assert result.returncode == 2 and "error:" in result.stderr


def test_the_named_build_recipes(monkeypatch, tmp_path):
    """`--recipe cpu` (the bundled teacher's) sets its settings, an option given explicitly wins, the
    default is the LLM2Vec paper's (the field defaults), an unknown name is one error naming the known ones."""
    import genembed.teacher_build as teacher_build
    from genembed.cli import app
    from genembed.teacher_build.config import TEACHER_RECIPES, TeacherBuildConfig

    seen = []
    monkeypatch.setattr(teacher_build, "build_teacher", lambda cfg, resume=False: seen.append(cfg) or "spec")
    runner = CliRunner()
    out = str(tmp_path / "b")
    for args in (["--recipe", "cpu"], ["--recipe", "cpu", "--mntp-steps", "7", "--simcse-lr", "3e-05"], []):
        result = runner.invoke(app, ["teacher", "build", "--out", out, *args])
        assert result.exit_code == 0, result.output
    cpu, overridden, paper = seen
    assert cpu == TeacherBuildConfig(out_dir=out, **TEACHER_RECIPES["cpu"].settings)
    assert (cpu.mntp_steps, cpu.simcse_steps, cpu.mntp_batch_size, cpu.simcse_batch_size) == (150, 50, 8, 16)
    assert (overridden.mntp_steps, overridden.simcse_lr, overridden.mntp_batch_size) == (7, 3e-5, 8)
    assert paper == TeacherBuildConfig(out_dir=out) and paper.mntp_steps == 1000
    with pytest.raises(ValueError, match="unknown teacher recipe 'gpu': the recipes are llm2vec, cpu"):
        TeacherBuildConfig.from_recipe("gpu", out_dir=out)
