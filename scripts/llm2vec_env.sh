#!/usr/bin/env bash
# Side venv .venv-llm2vec (repo root) holding the original LLM2Vec package, llm2vec==0.2.3: the reference
# for LLM2Vec teachers (bidirectional Llama / Mistral / Gemma / Qwen2 plus LoRA adapters, mean pooling).
# Used by scripts/llm2vec_fixture.py to write tests/fixtures/llm2vec/, and by tests/test_llm2vec_teacher.py,
# which runs the package live on a teacher folder written by genembed. genembed itself never imports it.
#
# llm2vec 0.2.3 pins transformers>=4.43.1,<=4.44.2 (its bidirectional classes subclass 4.44's attention
# classes), so it cannot share genembed's venv: it goes in with --no-deps over transformers==4.44.2 and
# peft==0.13.2 (the last versions it runs with; numpy<2.3, which transformers 4.44 predates) and the rest it
# imports. scripts/side_venv.sh does the building.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LABEL=llm2vec
VENV="${LLM2VEC_VENV:-$ROOT/.venv-llm2vec}"
CHECK='
import importlib.metadata as md
want = {"torch": "2.13.0", "transformers": "4.44.2", "peft": "0.13.2", "llm2vec": "0.2.3"}
for name, version in want.items():
    got = md.version(name)
    assert got.split("+")[0] == version, (name, got)
import numpy, safetensors, accelerate, tokenizers
from llm2vec import LLM2Vec
'
DEPS=("transformers==4.44.2" "peft==0.13.2" gguf sentencepiece accelerate "numpy<2.3" safetensors tqdm)
PACKAGE="llm2vec==0.2.3"
source "$ROOT/scripts/side_venv.sh"
