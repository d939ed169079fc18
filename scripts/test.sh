#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite: unit tests on a tiny llama built in the
# tests, and integration tests on the real SmolLM2 backbone and MiniLM teacher.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# the official llm2vec-gen package in a side venv: tests/test_official.py checks that it loads what
# `genembed export` writes (idempotent; about a minute the first time)
bash scripts/official_env.sh
# the original llm2vec package in a side venv: tests/test_llm2vec_teacher.py checks genembed's LLM2Vec teachers
# against it (idempotent; about a minute the first time)
bash scripts/llm2vec_env.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec .venv/bin/python -m pytest -q "$@"
