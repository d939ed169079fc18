#!/usr/bin/env bash
# Stage 1 of a training run, resumable: SmolLM2-135M-Instruct answers the first N ShareGPT
# training-split queries (greedy, MAX_NEW new tokens, 64 unless given; bf16 where it is native, a GPU or a
# CPU with AVX-512 BF16 / AMX, else float32) into RUN/responses.jsonl,
# and the rows still inside the current training split go to RUN/train.jsonl in the split's order (the split
# never admits a held-out query; genembed.data.training_rows), so its first rows are the same however the answers
# were made.   usage: bash scripts/answer_queries.sh RUN N [MAX_NEW]
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
RUN=$1; N=$2; MAX_NEW=${3:-64}
mkdir -p "$RUN"
BF16=${BF16-$(.venv/bin/python -c "from genembed.backbone import bf16_is_native; print('--bf16' if bf16_is_native() else '')")}
.venv/bin/genembed generate --out "$RUN/responses.jsonl" --limit "$N" --batch-size 32 --max-new-tokens "$MAX_NEW" $BF16
.venv/bin/python - "$RUN" <<'PY'
import json, sys
from genembed.data import training_rows
from genembed.jsonl import read_rows
run = sys.argv[1]
rows = training_rows(read_rows(f"{run}/responses.jsonl"))
with open(f"{run}/train.jsonl", "w") as f:
    f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
print(f"{len(rows)} training rows")
PY
