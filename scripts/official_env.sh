#!/usr/bin/env bash
# Side venv .venv-official (repo root) holding the OFFICIAL LLM2Vec-Gen package, llm2vec-gen==0.1.3,
# used to produce/refresh the reference fixture (scripts/official_fixture.py -> tests/fixtures/official/),
# for the real-backbone parity (lab/parity/official_parity*.py) and by the test suite, which checks that the
# official code loads what `genembed export` writes (scripts/test.sh builds it). genembed itself never
# imports it.
#
# The package's own pins (torch==2.6.0, flash-attn, mteb, wandb, hydra, ...) do not install here, so it goes in
# with --no-deps over the libraries its code really imports, at the versions it pins where it matters
# (transformers==4.56.2, peft==0.18.0; datasets for dataset/). scripts/side_venv.sh does the building.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LABEL=official
VENV="${OFFICIAL_VENV:-$ROOT/.venv-official}"
CHECK='
import importlib.metadata as md
want = {"torch": "2.13.0", "transformers": "4.56.2", "peft": "0.18.0", "llm2vec-gen": "0.1.3"}
for name, version in want.items():
    got = md.version(name)
    assert got.split("+")[0] == version, (name, got)
import llm2vec_gen, safetensors, yaml, accelerate
from llm2vec_gen.models import LLM2VecGenModel, EncoderDecoderModel
from llm2vec_gen.dataset.data_collator import CustomCollator
'
DEPS=("transformers==4.56.2" "peft==0.18.0" accelerate gguf sentencepiece pyyaml tokenizers safetensors numpy
      datasets huggingface-hub)
PACKAGE="llm2vec-gen==0.1.3"
source "$ROOT/scripts/side_venv.sh"
