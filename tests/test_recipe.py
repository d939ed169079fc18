"""The schema holds what a user of the method needs: combinations in which a loss does nothing are
refused with the reason, and settings removed after losing their screens are refused by name
wherever they were recorded (a checkpoint's config, a run's resume state)."""
import json

import numpy as np
import pytest

from genembed.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from genembed.recipe import REMOVED, TrainConfig


def test_rec_only_steps_without_reconstruction_is_refused_with_the_reason():
    # before issue 24 this ran N steps on a loss of exactly zero without a word
    with pytest.raises(ValueError, match="rec_only_steps=5 with w_rec=0.*exactly zero"):
        TrainConfig(responses="r", out_dir="o", rec_only_steps=5)
    TrainConfig(responses="r", out_dir="o", rec_only_steps=5, w_rec=1.0)  # with reconstruction: a real schedule


@pytest.mark.parametrize("settings,match", [
    ({"gradient_checkpointing": True}, "gradient_checkpointing with w_rec=0"),
    ({"w_align": 0.0}, "no loss trains anything"),
    ({"w_rec": -1.0}, "loss weights must be >= 0"),
    ({"rec_only_steps": 9, "w_rec": 1.0, "steps": 5}, "between 0 and steps"),
    ({"dtype": "int8"}, "dtype must be one of"),
])
def test_combinations_that_do_nothing_are_refused(settings, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(responses="r", out_dir="o", **settings)


@pytest.mark.parametrize("name", sorted(REMOVED))
def test_removed_settings_are_no_longer_options(name):
    with pytest.raises(TypeError, match=name):
        TrainConfig(responses="r", out_dir="o", **{name: REMOVED[name]})


def _edit_config(folder, **fields):
    path = folder / "config.json"
    config = json.loads(path.read_text())
    config.update(fields)
    path.write_text(json.dumps(config))


def test_an_older_checkpoint_with_the_remaining_values_loads_and_embeds_the_same(tiny_model, tmp_path):
    folder = save_checkpoint(tiny_model, tmp_path / "ckpt")
    before = load_checkpoint(folder).encode(["paris", "how do I boil an egg"])
    _edit_config(folder, recon_form="linear", prompt_frame="none")  # as every checkpoint before issue 24 wrote
    np.testing.assert_array_equal(load_checkpoint(folder).encode(["paris", "how do I boil an egg"]), before)


@pytest.mark.parametrize("field,value", [("recon_form", "centered"), ("prompt_frame", "chat")])
def test_a_checkpoint_that_used_a_removed_option_is_refused_by_name(tiny_model, tmp_path, field, value):
    folder = save_checkpoint(tiny_model, tmp_path / "ckpt")
    _edit_config(folder, **{field: value})
    with pytest.raises(CheckpointError, match=f"{field}='{value}'.*no longer has.*git checkout"):
        load_checkpoint(folder)


def test_a_run_that_used_a_removed_setting_is_not_resumed():
    from genembed.train import changed_settings

    cfg = TrainConfig(responses="r", out_dir="o")
    saved = dict(vars(cfg))
    assert changed_settings({**saved, "align_loss": "mse", "target": "response"}, cfg) == []
    assert changed_settings({**saved, "align_loss": "cosine"}, cfg) == ["align_loss"]


def test_a_setting_removed_later_names_the_commit_it_last_ran_at():
    from genembed.recipe import LAST_COMMIT, REMOVED_AT, removed_setting_error
    from genembed.train import changed_settings

    assert removed_setting_error("w_contrast", 0.0, "run") is None  # the one value every run has
    refusal = removed_setting_error("w_contrast", 1.0, "runs/x/resume")
    assert f"git checkout {REMOVED_AT['w_contrast']}" in refusal and LAST_COMMIT not in refusal
    assert f"git checkout {LAST_COMMIT}" in removed_setting_error("w_margin", 1.0, "run")
    cfg = TrainConfig(responses="r", out_dir="o")
    saved = {**vars(cfg), "w_contrast": 1.0, "contrast_temperature": 0.05}  # a resume state written at that commit
    assert changed_settings(saved, cfg) == ["w_contrast"]
    assert changed_settings({**saved, "w_contrast": 0.0}, cfg) == []
