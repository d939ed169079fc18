#!/usr/bin/env bash
# Side venv .venv-llm2vec (repo root) holding the original LLM2Vec package, llm2vec==0.2.3: the reference
# for LLM2Vec teachers (bidirectional Llama / Mistral / Gemma / Qwen2 plus LoRA adapters, mean pooling).
# Used by scripts/llm2vec_fixture.py to write tests/fixtures/llm2vec/, and by tests/test_llm2vec_teacher.py,
# which runs the package live on a teacher folder written by genembed. genembed itself never imports it.
#
# llm2vec 0.2.3 pins transformers>=4.43.1,<=4.44.2 (its bidirectional classes subclass 4.44's attention
# classes), so it cannot share genembed's venv:
#   1. torch==2.13.0 first (an exact pin: a looser spec pulls a huge CUDA build),
#   2. transformers==4.44.2 and peft==0.13.2 (the last versions it runs with), and the rest it imports,
#   3. llm2vec==0.2.3 itself with --no-deps (its own requirements would pull other versions).
# Idempotent: an existing venv that already has everything is left as it is.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LLM2VEC_VENV:-$ROOT/.venv-llm2vec}"
PY="${PYTHON:-python3}"

check() {
  "$VENV/bin/python" - <<'PYEOF' 2>/dev/null
import importlib.metadata as md
want = {"torch": "2.13.0", "transformers": "4.44.2", "peft": "0.13.2", "llm2vec": "0.2.3"}
for name, version in want.items():
    got = md.version(name)
    assert got.split("+")[0] == version, (name, got)
import numpy, safetensors, accelerate, tokenizers  # noqa: F401
from llm2vec import LLM2Vec  # noqa: F401
PYEOF
}

if [ -x "$VENV/bin/python" ] && check; then
  echo "llm2vec venv ready: $VENV"
  exit 0
fi

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check -q)
"${PIP[@]}" --upgrade pip
# 1. torch, exactly this version, before anything that depends on it
"${PIP[@]}" "torch==2.13.0"
# 2. what llm2vec imports, at the versions it runs with (numpy<2.3: transformers 4.44 predates numpy 2.3)
"${PIP[@]}" "transformers==4.44.2" "peft==0.13.2" gguf sentencepiece accelerate "numpy<2.3" safetensors tqdm
# 3. the package itself, without its requirements
"${PIP[@]}" --no-deps "llm2vec==0.2.3"

check || { echo "llm2vec venv incomplete: $VENV" >&2; exit 1; }
echo "llm2vec venv ready: $VENV"
