#!/usr/bin/env bash
# Rebuild the bundled default checkpoint (genembed/default/) from scratch, offline: `genembed train`'s
# defaults with the arguments of default_recipe in scripts/recipes.sh (alignment to MiniLM toward the mixed
# target normalise(t(query) + t(response)) on 2,400 answered ShareGPT queries for 1,200 steps with a 5%
# warm-up: the recipe chosen on the broad benchmark's selection set, issue 27, `mixed-1200` in
# experiments/broad_recipes.sh), then its query lens (scripts/build_checkpoint.sh: the stages).
# Resumable. STEPS=N changes the number of steps (the warm-up stays 5% of them).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/recipes.sh
default_recipe "${STEPS:-1200}"
unset STEPS  # (the steps are in RECIPE)
exec bash scripts/build_checkpoint.sh default "${RECIPE[@]}"
