#!/usr/bin/env bash
# Rebuild the bundled default checkpoint (genembed/default/) from scratch, offline:
#   1-2. SmolLM2-135M-Instruct answers 2,400 ShareGPT training queries (greedy, 64 new tokens) and
#        rows outside the current training split are dropped (scripts/answer_queries.sh)
#   3. training with the defaults of `genembed train` (MiniLM teacher; STEPS=N overrides the steps)
#   4. its query lens (the default decoder) embeds every ShareGPT training-split query
#   5. the final checkpoint is copied into genembed/default/
# Every stage resumes where it stopped if the script is run again.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
RUN=${RUN:-runs/default}
STEPS=${STEPS:-}
# bf16 autocast only where it is native (a GPU, a CPU with AVX-512 BF16 / AMX); emulated it is slower than float32
export BF16=${BF16-$(.venv/bin/python -c "from genembed.backbone import bf16_is_native; print('--bf16' if bf16_is_native() else '')")}
ge=.venv/bin/genembed
mkdir -p "$RUN"
start=$(date +%s)
bash scripts/answer_queries.sh "$RUN" 2400
resume=""
if [ -e "$RUN/run/log.jsonl" ]; then resume="--resume"; fi  # a started run continues (from step 0 if nothing was saved)
$ge train --responses "$RUN/train.jsonl" --out "$RUN/run" ${STEPS:+--steps "$STEPS"} $BF16 --no-query-lens $resume
# the query lens (the default decoder) holds every ShareGPT training-split query, answered or not:
# more queries, nearer neighbours (2,400 -> 9,449: decoding gap 0.25 -> 0.32, docs/decoding.md)
if [ ! -e "$RUN/run/model/query-lens.safetensors" ]; then  # (it keeps their ids, not their text)
  $ge query-lens --model "$RUN/run/model" --sharegpt $BF16
fi
mkdir -p genembed/default
cp "$RUN/run/model/config.json" "$RUN/run/model/model.safetensors" "$RUN/run/model/query-lens.safetensors" genembed/default/
mkdir -p docs  # the README's loss curve and the settings and log behind it
cp "$RUN/run/losses.png" docs/default-losses.png
cp "$RUN/run/log.jsonl" docs/default-train-log.jsonl
cp "$RUN/run/train_config.json" docs/default-train-config.json
echo "default rebuilt in $(( $(date +%s) - start )) s (this run; resumed stages count only their remaining work)"
