#!/usr/bin/env bash
# Build the bundled self-supervised checkpoint (genembed/self-supervised/, `genembed.load("self-supervised")`)
# from scratch, offline: the paper's own setting, no labelled data anywhere. The teacher is the frozen
# backbone itself (`--teacher self`: its mean-pooled last-layer states of the response), trained on the
# same 2,400 answered ShareGPT queries as the default with self_supervised_recipe's arguments (scripts/recipes.sh;
# scripts/build_checkpoint.sh: the stages). Resumable.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/recipes.sh
self_supervised_recipe
exec bash scripts/build_checkpoint.sh self-supervised "${RECIPE[@]}"
