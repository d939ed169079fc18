#!/usr/bin/env bash
# On a machine with a CUDA GPU: the test suite (GPU tests included; they are skipped elsewhere),
# then a short training and encode of the tiny test model printing step time and peak GPU memory.
# Uses the machine's own torch (a CUDA build): `.venv` from scripts/setup.sh is a CPU build.
#   bash scripts/gpu_check.sh            # python3 with torch+CUDA on PATH, genembed installed or importable
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name())"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
"$PY" -m pytest -q -m "not integration" "$@"
"$PY" scripts/gpu_check.py
