# The `genembed train` arguments of the bundled checkpoints, written once: scripts/train_default.sh and
# scripts/train_self_supervised.sh build them with these, experiments/broad_recipes.sh compares them
# (its `mixed-1200` and `self-align` variants), tests/test_bundled_recipes.py checks them against docs/NAME-train-config.json.
# Each function sets the array RECIPE.   usage: source scripts/recipes.sh; default_recipe [STEPS]

default_recipe() {  # alignment to MiniLM toward normalise(t(query) + t(response)), a 5% warm-up (issue 27, stop 41)
  local steps=${1:-1200}
  RECIPE=(--target query+response --steps "$steps" --warmup-steps $(( steps / 20 )))
}

self_supervised_recipe() {  # the paper's setting: the frozen backbone is its own teacher, alignment alone; each
  # answer also trains the document side (--documents, stop 44: selection 0.642 against 0.624 without)
  RECIPE=(--teacher self --documents)
}
