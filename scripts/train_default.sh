#!/usr/bin/env bash
# Rebuild the bundled default checkpoint (genembed/default/) from scratch, offline: `genembed train`'s
# defaults (alignment to MiniLM) on 2,400 answered ShareGPT queries for 1,200 steps with a 5% warm-up
# (the recipe chosen on the broad benchmark's selection set, issue 27: `align-1200` in
# experiments/broad_recipes.sh), then its query lens (scripts/build_checkpoint.sh: the stages).
# Resumable. STEPS=N changes the number of steps (the warm-up stays 5% of them).
set -euo pipefail
cd "$(dirname "$0")/.."
export STEPS=${STEPS:-1200}
exec bash scripts/build_checkpoint.sh default --warmup-steps $(( STEPS / 20 ))
