#!/usr/bin/env bash
# Training rows for lab/experiments/specs/data.toml: the first 4,800 ShareGPT training queries answered.
# The first 2,400 are the default's (copied from runs/default when it is there, else answered too).
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p runs/data
if [ ! -f runs/data/responses.jsonl ] && [ -f runs/default/responses.jsonl ]; then
    cp runs/default/responses.jsonl runs/data/responses.jsonl
fi
bash scripts/answer_queries.sh runs/data 4800
