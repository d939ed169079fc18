"""The schema holds what a user of the method needs: combinations in which a loss does nothing are
refused with the reason, the named recipes build from it, and a setting it does not know is refused by
name wherever it was recorded (a checkpoint's config, a run's resume state)."""
import json

import pytest
import torch

from genembed.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from genembed.recipe import RECIPES, TrainConfig


def test_rec_only_steps_without_reconstruction_is_refused_with_the_reason():
    # it would run N steps on a loss of exactly zero
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


def test_the_warm_up_is_five_percent_of_the_steps_unless_given():
    assert TrainConfig(responses="r", out_dir="o").warmup_steps == 60  # the default's 1,200 steps
    assert TrainConfig(responses="r", out_dir="o", steps=600).warmup_steps == 30
    assert TrainConfig(responses="r", out_dir="o", steps=600, warmup_steps=7).warmup_steps == 7
    cfg = TrainConfig.from_recipe("default", responses="r", out_dir="o", steps=2400)
    assert cfg.warmup_steps == 120
    assert TrainConfig.from_recipe("paper", responses="r", out_dir="o", steps=1000).warmup_steps == 100  # its own


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_every_recipe_builds_and_sets_only_what_differs_from_the_defaults(name):
    cfg = TrainConfig.from_recipe(name, responses="r", out_dir="o")
    plain = TrainConfig(responses="r", out_dir="o")
    for key, value in RECIPES[name].settings.items():
        assert getattr(cfg, key) == value != getattr(plain, key), key
    assert RECIPES[name].description and "\n" not in RECIPES[name].description


def test_the_paper_recipe_trains_both_losses_at_the_official_scale():
    cfg = TrainConfig.from_recipe("paper", responses="r", out_dir="o")
    assert (cfg.w_rec, cfg.batch_size, cfg.steps, cfg.warmup_steps) == (1.0, 32, 5000, 100)
    assert (cfg.lr_tokens, cfg.lr_projections, cfg.max_query_tokens) == (3e-4, 3e-4, 512)
    assert (cfg.num_thought_tokens, cfg.num_compression_tokens, cfg.target) == (0, 10, "response")


def test_an_unknown_recipe_is_refused_naming_the_known_ones():
    with pytest.raises(ValueError, match="unknown recipe 'selfsupervised': the recipes are default, self-supervised, "
                                         "paper"):
        TrainConfig.from_recipe("selfsupervised", responses="r", out_dir="o")


def test_a_checkpoint_config_with_a_setting_the_schema_does_not_know_is_refused_by_name(tiny_model, tmp_path):
    folder = save_checkpoint(tiny_model, tmp_path / "ckpt")
    load_checkpoint(folder)  # as written, it loads
    path = folder / "config.json"
    # recon_form: a setting genembed no longer has, at the one value it last had
    path.write_text(json.dumps({**json.loads(path.read_text()), "recon_form": "linear"}))
    with pytest.raises(CheckpointError, match=r"config.json has settings this genembed does not know \(recon_form\)"):
        load_checkpoint(folder)


def test_a_resume_state_with_a_setting_the_schema_does_not_know_is_refused_by_name(tiny_backbone_path,
                                                                                   tiny_responses, tmp_path):
    from test_train import config

    from genembed.train import train

    train(config(tiny_backbone_path, tiny_responses, tmp_path / "run", steps=3), show_progress_bar=False)
    state_path = tmp_path / "run" / "resume" / "trainer.pt"
    state = torch.load(state_path, weights_only=False)
    state["train_config"]["w_contrast"] = 0.0  # a setting genembed no longer has, at the one value it last had
    torch.save(state, state_path)
    with pytest.raises(ValueError, match=r"does not have \(w_contrast\).*new --out"):
        train(config(tiny_backbone_path, tiny_responses, tmp_path / "run", steps=6), show_progress_bar=False,
              resume=True)
