#!/usr/bin/env bash
# Build the bundled self-supervised checkpoint (genembed/self-supervised/, `genembed.load("self-supervised")`)
# from scratch, offline: the paper's own setting, no labelled data anywhere. `genembed train --recipe
# self-supervised` (genembed/recipe.py): the teacher is the frozen backbone itself (its mean-pooled last-layer
# states of the response), alignment alone with document rows for 600 steps, on the same 2,400 answered
# ShareGPT queries as the default (scripts/build_checkpoint.sh: the stages). Resumable.
set -euo pipefail
cd "$(dirname "$0")/.."
exec bash scripts/build_checkpoint.sh self-supervised --recipe self-supervised
