#!/usr/bin/env bash
# Training rows for the response-128 variant of lab/experiments/specs/length.toml: the default's 2,400
# ShareGPT training queries answered again with up to 128 new tokens instead of 64 (resumable).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/answer_queries.sh runs/length-128 2400 128
