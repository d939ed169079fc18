#!/usr/bin/env bash
# Rebuild the bundled default checkpoint (genembed/default/) from scratch, offline: `genembed train --recipe
# default` (alignment to MiniLM toward the mixed target normalise(t(query) + t(response)) on 2,400 answered
# ShareGPT queries for 1,200 steps with a 5% warm-up; genembed/recipe.py), then its query lens
# (scripts/build_checkpoint.sh: the stages). Resumable. STEPS=N changes the number of steps (the warm-up
# stays 5% of them).
set -euo pipefail
cd "$(dirname "$0")/.."
exec bash scripts/build_checkpoint.sh default --recipe default
