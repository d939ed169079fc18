#!/usr/bin/env bash
# Build one bundled checkpoint (genembed/NAME/) from scratch, offline; what train_default.sh and
# train_self_supervised.sh run:
#   1-2. SmolLM2-135M-Instruct answers the first QUERIES (default 2,400) ShareGPT training queries (greedy, 64 new
#        tokens) into ANSWERS (default runs/default: every bundled checkpoint trains on the same answers, the
#        first of one fixed order) and rows outside the current training split are dropped (scripts/answer_queries.sh)
#   3. `genembed train` with the arguments given (`--recipe NAME`; STEPS=N overrides the steps)
#   4. its query lens (the default decoder) embeds every ShareGPT training-split query (LENS=sharegpt, the
#      default), or with LENS=training only its training queries, written by `genembed train` itself
#   5. the final checkpoint and the settings it was trained with (train-config.json) are copied into
#      genembed/NAME/, its loss curve and log into lab/bundled/NAME-*
# Every stage resumes where it stopped if the script is run again.
#   usage: bash scripts/build_checkpoint.sh NAME [genembed train arguments ...]
set -euo pipefail
cd "$(dirname "$0")/.."
NAME=$1; shift
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
ANSWERS=${ANSWERS:-runs/default}
RUN=${RUN:-runs/$NAME}
STEPS=${STEPS:-}
LENS=${LENS:-sharegpt}
QUERIES=${QUERIES:-2400}
lens_flag=--no-query-lens
if [ "$LENS" = training ]; then lens_flag=--query-lens; fi
# bf16 autocast only where it is native (a GPU, a CPU with AVX-512 BF16 / AMX); emulated it is slower than float32
export BF16=${BF16-$(.venv/bin/python -c "from genembed.backbone import bf16_is_native; print('--bf16' if bf16_is_native() else '')")}
ge=.venv/bin/genembed
mkdir -p "$RUN"
start=$(date +%s)
bash scripts/answer_queries.sh "$ANSWERS" "$QUERIES"
resume=""
if [ -e "$RUN/run/log.jsonl" ]; then resume="--resume"; fi  # a started run continues (from step 0 if nothing was saved)
$ge train --responses "$ANSWERS/train.jsonl" --out "$RUN/run" ${STEPS:+--steps "$STEPS"} $BF16 $lens_flag $resume "$@"
# the query lens (the default decoder) holds every ShareGPT training-split query, answered or not:
# more queries, nearer neighbours (2,400 -> 9,449: decoding gap 0.25 -> 0.32, lab/reports/decoding.md)
if [ "$LENS" = sharegpt ] && [ ! -e "$RUN/run/model/query-lens.safetensors" ]; then  # (it keeps their ids, not their text)
  $ge query-lens --model "$RUN/run/model" --sharegpt $BF16
fi
mkdir -p "genembed/$NAME" lab/bundled
cp "$RUN/run/model/config.json" "$RUN/run/model/model.safetensors" "$RUN/run/model/query-lens.safetensors" "genembed/$NAME/"
cp "$RUN/run/train_config.json" "genembed/$NAME/train-config.json"  # tests/test_bundled_recipes.py checks it
cp "$RUN/run/losses.png" "lab/bundled/$NAME-losses.png"
cp "$RUN/run/log.jsonl" "lab/bundled/$NAME-train-log.jsonl"
echo "$NAME rebuilt in $(( $(date +%s) - start )) s (this run; resumed stages count only their remaining work)"
