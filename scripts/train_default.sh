#!/usr/bin/env bash
# Rebuild the bundled default checkpoint (genembed/default/) from scratch, offline: the recipe of
# `genembed train`'s defaults (alignment to MiniLM) on 2,400 answered ShareGPT queries, then its query
# lens (scripts/build_checkpoint.sh: the stages). Resumable. STEPS=N changes the number of steps.
set -euo pipefail
cd "$(dirname "$0")/.."
exec bash scripts/build_checkpoint.sh default
