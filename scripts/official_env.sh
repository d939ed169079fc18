#!/usr/bin/env bash
# Side venv .venv-official (repo root) holding the OFFICIAL LLM2Vec-Gen package, llm2vec-gen==0.1.3,
# used to produce/refresh the reference fixture (scripts/official_fixture.py -> tests/fixtures/official/),
# for the real-backbone parity (scripts/official_parity*.py) and by the test suite, which checks that the
# official code loads what `genembed export` writes (scripts/test.sh builds it). genembed itself never
# imports it.
#
# The package's own pins (torch==2.6.0, flash-attn, mteb, wandb, hydra, ...) do not install here, so:
#   1. torch==2.13.0 first (an exact pin: a looser spec pulls a huge CUDA build),
#   2. the libraries the official code really imports, at the versions it pins where it matters
#      (transformers==4.56.2, peft==0.18.0),
#   3. llm2vec-gen==0.1.3 itself with --no-deps.
# Idempotent: an existing venv that already has everything is left as it is.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${OFFICIAL_VENV:-$ROOT/.venv-official}"
PY="${PYTHON:-python3}"

check() {
  "$VENV/bin/python" - <<'EOF' 2>/dev/null
import importlib.metadata as md
want = {"torch": "2.13.0", "transformers": "4.56.2", "peft": "0.18.0", "llm2vec-gen": "0.1.3"}
for name, version in want.items():
    got = md.version(name)
    assert got.split("+")[0] == version, (name, got)
import llm2vec_gen, safetensors, yaml, accelerate  # noqa: F401
from llm2vec_gen.models import LLM2VecGenModel, EncoderDecoderModel  # noqa: F401
from llm2vec_gen.dataset.data_collator import CustomCollator  # noqa: F401
EOF
}

if [ -x "$VENV/bin/python" ] && check; then
  echo "official venv ready: $VENV"
  exit 0
fi

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check -q)
"${PIP[@]}" --upgrade pip
# 1. torch, exactly this version, before anything that depends on it
"${PIP[@]}" "torch==2.13.0"
# 2. what llm2vec_gen's imports need (models/, dataset/, losses.py; datasets for dataset/)
"${PIP[@]}" "transformers==4.56.2" "peft==0.18.0" accelerate gguf sentencepiece pyyaml tokenizers \
  safetensors numpy datasets huggingface-hub
# 3. the official package itself, without its (uninstallable here) pins
"${PIP[@]}" --no-deps "llm2vec-gen==0.1.3"

check || { echo "official venv incomplete: $VENV" >&2; exit 1; }
echo "official venv ready: $VENV"
