"""The bundled checkpoints were trained with the recipes their build scripts write (scripts/recipes.sh).
A recipe changed in one place and not retrained, or a checkpoint retrained by hand with other arguments,
fails here: docs/NAME-train-config.json is the settings the bundled weights were trained with."""
import dataclasses
import json
import subprocess
from pathlib import Path

import pytest

from genembed.train import TrainConfig

REPO = Path(__file__).resolve().parents[1]
# set per run by scripts/build_checkpoint.sh, not by the recipe: where the data and the run live, the
# query lens built as its own stage, bf16 where the machine has it natively
NOT_RECIPE = {"responses", "out_dir", "query_lens", "bf16", "dtype"}


def recipe_arguments(function: str) -> dict[str, str]:
    out = subprocess.run(["bash", "-c", f'source scripts/recipes.sh && {function} && printf "%s\\n" "${{RECIPE[@]}}"'],
                         cwd=REPO, capture_output=True, text=True, check=True).stdout.split("\n")[:-1]
    args = {}
    for i, token in enumerate(out):
        if token.startswith("--"):  # a flag with its value, or a switch (--documents) when another flag follows
            value = out[i + 1] if i + 1 < len(out) and not out[i + 1].startswith("--") else "1"
            args[token[2:].replace("-", "_")] = value
        else:
            assert i and out[i - 1].startswith("--"), out  # a value belongs to the flag before it
    return args


@pytest.mark.parametrize("name, function", [("default", "default_recipe"),
                                            ("self-supervised", "self_supervised_recipe")])
def test_the_bundled_checkpoint_was_trained_with_the_recipe_its_script_writes(name, function):
    recorded = json.loads((REPO / "docs" / f"{name}-train-config.json").read_text())
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    expected = {k: f.default for k, f in fields.items() if f.default is not dataclasses.MISSING}
    for key, value in recipe_arguments(function).items():
        assert key in fields, f"scripts/recipes.sh {function}: --{key} is not a TrainConfig field"
        expected[key] = type(expected[key])(value) if expected.get(key) is not None else value
    differ = {k: (recorded.get(k, expected[k]), expected[k]) for k in expected
              if k not in NOT_RECIPE and recorded.get(k, expected[k]) != expected[k]}  # (a field newer than the run: its default)
    assert not differ, f"genembed/{name} was trained with (recorded, recipe): {differ}"
