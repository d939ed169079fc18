"""The bundled checkpoints were trained with the recipes their build scripts name (`genembed train --recipe
default` / `--recipe self-supervised`, genembed/recipe.py). A recipe changed without retraining, or a
checkpoint retrained by hand with other arguments, fails here: genembed/NAME/train-config.json is the
settings the bundled weights were trained with. The configs are built through the command line, so
`--recipe` and its overrides are what is checked."""
import dataclasses
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import genembed.train as train_module
from genembed.cli import app
from genembed.recipe import RECIPES, TrainConfig

REPO = Path(__file__).resolve().parents[1]
# set per run by scripts/build_checkpoint.sh, not by the recipe: where the data and the run live, the
# query lens built as its own stage, bf16 where the machine has it natively, the backbone's precision
NOT_RECIPE = {"responses", "out_dir", "query_lens", "bf16", "dtype"}
FIELDS = [f.name for f in dataclasses.fields(TrainConfig)]


class Captured(Exception):
    """Stops `genembed train` where the run would start, holding the config it built."""


def cli_config(monkeypatch, tmp_path, *args) -> TrainConfig:
    """The TrainConfig `genembed train --responses R --out O ARGS` hands to the training run."""
    def capture(cfg, **kw):
        raise Captured(cfg)

    monkeypatch.setattr(train_module, "train", capture)
    responses = tmp_path / "responses.jsonl"
    responses.write_text('{"query": "q", "response": "r"}\n')
    result = CliRunner().invoke(app, ["train", "--responses", str(responses), "--out", str(tmp_path / "run"), *args])
    assert isinstance(result.exception, Captured), result.output
    return result.exception.args[0]


@pytest.mark.parametrize("name", ["default", "self-supervised"])
def test_the_bundled_checkpoint_was_trained_with_its_recipe(name, monkeypatch, tmp_path):
    recorded = json.loads((REPO / "genembed" / name / "train-config.json").read_text())
    # every key a setting of today's schema (train.py adds the number of processes beside them)
    assert set(recorded) == set(FIELDS) | {"num_processes"}, set(recorded) ^ (set(FIELDS) | {"num_processes"})
    built = dataclasses.asdict(cli_config(monkeypatch, tmp_path, "--recipe", name))
    differ = {k: (recorded[k], built[k]) for k in FIELDS if k not in NOT_RECIPE and recorded[k] != built[k]}
    assert not differ, f"genembed/{name} was trained with (recorded, --recipe {name}): {differ}"


def test_without_a_recipe_genembed_train_trains_the_bundled_defaults_recipe(monkeypatch, tmp_path):
    plain = cli_config(monkeypatch, tmp_path)
    named = cli_config(monkeypatch, tmp_path, "--recipe", "default")
    assert plain == named == TrainConfig(responses=plain.responses, out_dir=plain.out_dir)


def test_an_option_given_explicitly_overrides_the_recipe(monkeypatch, tmp_path):
    cfg = cli_config(monkeypatch, tmp_path, "--recipe", "self-supervised", "--steps", "80", "--no-documents",
                     "--teacher", "all-minilm-l6-v2")
    assert (cfg.steps, cfg.documents, cfg.teacher) == (80, False, "all-minilm-l6-v2")
    assert cfg.target == "response" and cfg.warmup_steps == 4  # the rest is the recipe's; the warm-up 5% of the steps
    # an option given with the value of the field default still overrides a recipe that sets another
    cfg = cli_config(monkeypatch, tmp_path, "--recipe", "paper", "--batch-size", "8", "--w-rec", "0")
    assert (cfg.batch_size, cfg.w_rec, cfg.steps, cfg.lr_tokens) == (8, 0.0, 5000, 3e-4)


def test_an_unknown_recipe_is_refused_naming_it_and_the_known_ones(monkeypatch, tmp_path):
    monkeypatch.setattr(train_module, "train", lambda cfg, **kw: pytest.fail("trained under an unknown recipe"))
    result = CliRunner().invoke(app, ["train", "--responses", "r.jsonl", "--out", str(tmp_path / "run"),
                                      "--recipe", "papers"])
    assert isinstance(result.exception, ValueError)
    assert str(result.exception) == f"unknown recipe 'papers': the recipes are {', '.join(RECIPES)}"


def test_train_help_lists_the_recipes():
    import typer

    result = CliRunner().invoke(app, ["train", "--help"])
    assert result.exit_code == 0 and "--recipe" in result.output
    option = next(p for p in typer.main.get_command(app).commands["train"].params if p.name == "recipe")
    assert all(f"'{name}': {r.description}" in option.help for name, r in RECIPES.items()), option.help


@pytest.mark.parametrize("name", ["default", "self-supervised"])
def test_a_bundled_query_lens_names_its_sharegpt_queries_by_id_and_holds_none_of_their_text(name):
    from safetensors import safe_open

    with safe_open(str(REPO / "genembed" / name / "query-lens.safetensors"), framework="np") as f:
        meta = f.metadata()
    assert "queries" not in meta and json.loads(meta["sharegpt_ids"])  # ShareGPT may not be redistributed
