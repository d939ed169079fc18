import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import genembed.train as train_module
from genembed.jsonl import read_rows
from genembed.train import TrainConfig, example_order, lr_factor, train


def config(tiny_backbone_path, responses, out, **kw):
    base = dict(responses=str(responses), out_dir=str(out), backbone=tiny_backbone_path, teacher="self",
                num_thought_tokens=2, num_compression_tokens=3, batch_size=2, steps=6, warmup_steps=2,
                save_every=3, max_query_tokens=16, max_response_tokens=12, ridge_examples=4, w_rec=1.0, target="response")
    base.update(kw)
    return TrainConfig(**base)


def test_schedule_and_data_order():
    assert [round(lr_factor(s, 2, 6), 3) for s in range(6)] == [0.5, 1.0, 1.0, 0.75, 0.5, 0.25]
    epoch = [example_order(5, 0, p) for p in range(5)]
    assert sorted(epoch) == list(range(5))  # each epoch is a permutation
    assert sorted(example_order(5, 0, p) for p in range(5, 10)) == list(range(5))
    assert example_order(5, 0, 7) == example_order(5, 0, 7)


def test_loss_falls_when_overfitting(tiny_backbone_path, tiny_responses, tmp_path):
    cfg = config(tiny_backbone_path, tiny_responses, tmp_path / "run", steps=40, batch_size=5, warmup_steps=4,
                 lr_tokens=5e-2, lr_projections=1e-2, save_every=100)
    train(cfg, show_progress_bar=False)
    log = read_rows(tmp_path / "run" / "log.jsonl")
    assert len(log) == 40 and {"rec", "align", "loss", "lr_tokens"} <= set(log[0])
    first, last = log[0], log[-1]
    assert last["rec"] < 0.8 * first["rec"], (first, last)
    assert last["align"] < first["align"], (first, last)
    assert (tmp_path / "run" / "losses.png").stat().st_size > 1000
    assert (tmp_path / "run" / "model" / "model.safetensors").exists()


class Killed(Exception):
    pass


def test_resume_equals_uninterrupted(tiny_backbone_path, tiny_responses, tmp_path, monkeypatch):
    train(config(tiny_backbone_path, tiny_responses, tmp_path / "straight"), show_progress_bar=False)

    real_append, calls = train_module.append_rows, {"n": 0}

    def dies_after_four_steps(path, rows):
        calls["n"] += 1
        if calls["n"] > 4:
            raise Killed()
        real_append(path, rows)

    monkeypatch.setattr(train_module, "append_rows", dies_after_four_steps)
    with pytest.raises(Killed):
        train(config(tiny_backbone_path, tiny_responses, tmp_path / "resumed"), show_progress_bar=False)
    monkeypatch.setattr(train_module, "append_rows", real_append)
    state = torch.load(tmp_path / "resumed" / "resume" / "trainer.pt", weights_only=False)
    assert state["step"] == 3  # the last save before the kill
    train(config(tiny_backbone_path, tiny_responses, tmp_path / "resumed"), show_progress_bar=False, resume=True)

    a = load_file(str(tmp_path / "straight" / "model" / "model.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "model" / "model.safetensors"))
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6)
    steps = [r["step"] for r in read_rows(tmp_path / "resumed" / "log.jsonl")]
    assert steps == list(range(6)), "the log has each step once"


def test_a_folder_another_run_writes_into_is_refused_until_that_run_is_killed(tiny_backbone_path, tiny_responses,
                                                                               tmp_path):
    """Two runs in one folder would interleave their saves and logs: the second is refused (the case of a
    launcher killed alone, whose workers go on), and once the first is killed with SIGKILL it resumes."""
    out = tmp_path / "run"
    cfg = config(tiny_backbone_path, tiny_responses, out, steps=2000, save_every=2)
    first = subprocess.Popen([sys.executable, "-c", "import json, sys; from genembed.train import TrainConfig, train; "
                              "train(TrainConfig(**json.loads(sys.argv[1])), show_progress_bar=False)",
                              json.dumps(asdict(cfg))], env={**os.environ, "HF_HUB_OFFLINE": "1"},
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while not (out / "resume" / "trainer.pt").exists() and first.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert first.poll() is None, first.stderr.read().decode()[-2000:]
        with pytest.raises(ValueError, match=f"{out} is in use by another training run"):
            train(cfg, show_progress_bar=False, resume=True)
        with pytest.raises(ValueError, match="in use by another training run"):
            train(config(tiny_backbone_path, tiny_responses, out), show_progress_bar=False)
        assert first.poll() is None, "the refused runs stopped the first"
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    # the kill freed the folder: the run resumes from its last save (two steps of it are enough to see)
    saved = torch.load(out / "resume" / "trainer.pt", weights_only=False)["step"]
    ran, real_step = [], train_module.Steps.__call__

    def two_steps(self, step):
        if len(ran) == 2:
            raise Killed()
        ran.append(step)
        return real_step(self, step)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train_module.Steps, "__call__", two_steps)
        with pytest.raises(Killed):
            train(cfg, show_progress_bar=False, resume=True)
    assert ran == [saved, saved + 1]


def test_resume_with_other_settings_is_refused(tiny_backbone_path, tiny_responses, tmp_path):
    train(config(tiny_backbone_path, tiny_responses, tmp_path / "run", steps=3), show_progress_bar=False)
    with pytest.raises(ValueError, match="other settings"):
        train(config(tiny_backbone_path, tiny_responses, tmp_path / "run", steps=3, lr_tokens=1.0),
              show_progress_bar=False, resume=True)


def test_too_little_data_fails_clearly(tiny_backbone_path, tiny_responses, tmp_path):
    with pytest.raises(ValueError, match="fewer than one batch"):
        train(config(tiny_backbone_path, tiny_responses, tmp_path / "run", batch_size=50), show_progress_bar=False)


def test_rec_only_steps_train_reconstruction_alone_first(tiny_backbone_path, tiny_responses, tmp_path):
    train(config(tiny_backbone_path, tiny_responses, tmp_path / "run", steps=4, rec_only_steps=2),
          show_progress_bar=False)
    log = read_rows(tmp_path / "run" / "log.jsonl")
    assert all(r["rec"] is not None and r["align"] > 0 for r in log)  # both losses measured every step
    assert [r["loss"] == pytest.approx(r["rec"]) for r in log] == [True, True, False, False]  # alignment weight 0, then on
    with pytest.raises(ValueError, match="rec_only_steps"):
        config(tiny_backbone_path, tiny_responses, tmp_path / "other", steps=5, rec_only_steps=6)


def test_package_exposes_the_recipe_and_the_train_module():
    import genembed

    assert genembed.TrainConfig is TrainConfig and genembed.train.train is train


def test_gradient_checkpointing_gives_the_same_loss_and_gradients(tiny_model, monkeypatch):
    """Checkpointed layers and the chunked LM head recompute in backward; the loss and every
    trainable gradient must equal the plain pass's."""
    import genembed.losses as losses
    from genembed.train import batch_loss

    monkeypatch.setattr(losses, "CE_CHUNK", 5)  # several chunks even for a tiny batch
    tok = tiny_model.backbone.tokenizer
    from genembed.inputs import prompt_ids, response_ids

    q = prompt_ids(tok, ["how do I boil an egg", "paris", "write a poem"], "", 32)
    r = response_ids(tok, ["put the egg in boiling water", "paris is the capital of france", "the sea"], 16)
    targets = torch.randn(3, tiny_model.config.embedding_dim)
    with torch.no_grad():
        tiny_model.special_tokens.normal_(0, 0.5)
    grads, calls = [], {False: 0, True: 0}
    mode = [False]
    # (the attention: recomputation stops as soon as the last saved tensor is back, inside the MLP)
    attention = tiny_model.backbone.model.base_model.layers[0].self_attn
    hook = attention.register_forward_hook(lambda *_: calls.__setitem__(mode[0], calls[mode[0]] + 1))
    tiny_model.prefix_cache.enabled = False  # (else the first step alone also builds the shared head)
    for ckpt in (False, True):
        mode[0] = ckpt
        tiny_model.zero_grad()
        loss, rec, _ = batch_loss(tiny_model, q, r, targets, 1.0, 16.0, checkpointing=ckpt)
        loss.backward()
        grads.append((rec.detach(), [p.grad.clone() for p in tiny_model.parameters()]))
    hook.remove()
    tiny_model.prefix_cache.enabled = True
    assert calls[True] == calls[False] + 1  # the reconstruction pass's layer ran again in backward
    torch.testing.assert_close(grads[0][0], grads[1][0], rtol=1e-5, atol=1e-6)
    for plain, ckpt in zip(grads[0][1], grads[1][1]):
        torch.testing.assert_close(plain, ckpt, rtol=1e-4, atol=1e-6)
    layer = tiny_model.backbone.model.base_model.layers[0]
    assert "forward" not in vars(layer)  # the layers are themselves again


def test_resume_ignores_settings_that_do_not_change_results():
    from genembed.recipe import TrainConfig
    from genembed.train import changed_settings

    cfg = TrainConfig(responses="r", out_dir="o", gradient_checkpointing=True, save_every=7, w_rec=1.0)
    saved = {k: v for k, v in vars(TrainConfig(responses="r", out_dir="o", w_rec=1.0)).items()
             if k != "gradient_checkpointing"}
    assert changed_settings(saved, cfg) == []  # an older run without the field, other save_every
    assert changed_settings({**saved, "steps": 5}, cfg) == ["steps"]


def test_the_alignment_loss_keeps_the_rounding_of_every_earlier_run():
    """Runs are reproducible bit for bit (the bundled default from scripts/train_default.sh, resumed runs,
    the demo's printed losses): the alignment loss must round as F.mse_loss does. A per-row mean of
    means, equal on paper, moved the demo's second-step loss from 0.0221 to 0.0228 (Adam amplifies the
    last bit of a near-zero gradient after the ridge warm start)."""
    from genembed.losses import alignment_loss

    gen = torch.Generator().manual_seed(0)
    e, t = torch.randn(8, 384, generator=gen), torch.randn(8, 384, generator=gen)
    assert torch.equal(alignment_loss(e, t), torch.nn.functional.mse_loss(e, t))
    torch.testing.assert_close(alignment_loss(e[:4], t[:4], rows_total=8) + alignment_loss(e[4:], t[4:], rows_total=8),
                               alignment_loss(e, t))  # a process's share of the batch: the parts add up


class CountingTeacher:
    """A teacher whose vectors are known: one fixed direction per text, at a length that is not 1."""
    name, dim = "counting", 3

    def __init__(self):
        self.calls = 0

    def embed(self, texts, show_progress_bar=False):
        self.calls += 1
        table = {"q1": [2.0, 0, 0], "q2": [0, 3.0, 0], "r1": [0, 0.5, 0], "r2": [0, 4.0, 0]}
        return np.array([table[t] for t in texts], dtype=np.float32)


def test_the_mixed_target_is_the_unit_mean_of_the_query_and_response_directions(tmp_path):
    from genembed.teachers import alignment_targets

    teacher = CountingTeacher()
    mixed = alignment_targets(teacher, ["q1", "q2"], ["r1", "r2"], "query+response", tmp_path)
    # q1 and r1 are orthogonal: the unit mean lies halfway, whatever their lengths; q2 and r2 agree
    np.testing.assert_allclose(mixed, [[2 ** -0.5, 2 ** -0.5, 0], [0, 1, 0]], atol=1e-6)
    np.testing.assert_array_equal(alignment_targets(teacher, ["q1", "q2"], ["r1", "r2"], "response", tmp_path),
                                  teacher.embed(["r1", "r2"]))
    assert teacher.calls == 3  # both sides cached on disk: the second call embedded nothing again (+1 just above)
    # plain distillation: the teacher's own vectors of the queries, as it gave them (cached: nothing embedded again)
    np.testing.assert_array_equal(alignment_targets(teacher, ["q1", "q2"], ["r1", "r2"], "query", tmp_path),
                                  [[2, 0, 0], [0, 3, 0]])
    assert teacher.calls == 3
    with pytest.raises(ValueError, match="target must be"):
        alignment_targets(teacher, ["q1"], ["r1"], "answer", tmp_path)
    with pytest.raises(ValueError, match="target must be one of"):
        TrainConfig(responses="r", out_dir="o", target="answer")


def test_the_mixed_target_trains_and_a_run_cannot_resume_under_the_other_target(tiny_backbone_path, tiny_responses,
                                                                                 tmp_path):
    train(config(tiny_backbone_path, tiny_responses, tmp_path / "run", steps=3, target="query+response"),
          show_progress_bar=False)
    mixed_first = read_rows(tmp_path / "run" / "log.jsonl")[0]["align"]
    train(config(tiny_backbone_path, tiny_responses, tmp_path / "plain", steps=3), show_progress_bar=False)
    assert read_rows(tmp_path / "plain" / "log.jsonl")[0]["align"] != mixed_first  # another target, another loss
    with pytest.raises(ValueError, match="other settings.*target"):
        train(config(tiny_backbone_path, tiny_responses, tmp_path / "run", steps=3), show_progress_bar=False,
              resume=True)


def test_document_rows_put_each_response_under_the_document_instruction_toward_its_own_embedding(tiny_model,
                                                                                                   tmp_path):
    from genembed.teachers import alignment_targets
    from genembed.train import with_document_rows

    teacher = CountingTeacher()
    rows = [{"query": "q1", "response": "r1"}, {"query": "q2", "response": "r2"}]
    queries = tiny_model.token_rows(["q1", "q2"], tiny_model.resolve_instruction("query"))
    mixed = alignment_targets(teacher, ["q1", "q2"], ["r1", "r2"], "query+response", tmp_path)
    q, r, t = with_document_rows(tiny_model, rows, teacher, queries, [[7], [8]], mixed, tmp_path, False,
                                 unit_targets=False)
    assert q[:2] == queries
    assert q[2:] == tiny_model.token_rows(["r1", "r2"], "Summarize the following passage: ")
    assert r == [[7], [8], [7], [8]]  # reconstruction rebuilds the response itself
    np.testing.assert_array_equal(t[:2], mixed)
    np.testing.assert_array_equal(t[2:], teacher.embed(["r1", "r2"]))  # the document's own vector, not the mixture


def test_a_run_with_document_rows_trains_on_both_sides_and_cannot_resume_without_them(tiny_backbone_path,
                                                                                      tiny_responses, tmp_path,
                                                                                      monkeypatch):
    seen, real = [], train_module.batch_loss

    def recording(model, query_rows, *args, **kw):
        seen.extend(tuple(r) for r in query_rows)
        return real(model, query_rows, *args, **kw)

    monkeypatch.setattr(train_module, "batch_loss", recording)
    model = train(config(tiny_backbone_path, tiny_responses, tmp_path / "run", documents=True),
                  show_progress_bar=False)
    rows = read_rows(tiny_responses)
    docs = model.token_rows([r["response"] for r in rows], model.resolve_instruction("document"))
    queries = model.token_rows([r["query"] for r in rows], model.resolve_instruction("query"))
    assert set(seen) == {tuple(r) for r in docs + queries}  # 12 draws from 10 rows: one epoch covers both sides
    with pytest.raises(ValueError, match="other settings.*documents"):
        train(config(tiny_backbone_path, tiny_responses, tmp_path / "run"), show_progress_bar=False, resume=True)
