#!/usr/bin/env bash
# The default recipe re-decided on the broad benchmark's SELECTION set only (the report set
# is not touched here). Every variant trains on the same answered queries with alignment to the answer for
# 600 steps (the recipe these comparisons ran around) except what its name says; each is scored by `genembed benchmark --set selection` into
# runs/benchmark-selection (results.md / .json / .png). Resumable: a finished stage is skipped, a
# started training run continues.
#   usage: bash lab/experiments/broad_recipes.sh [VARIANT ...]     (default: align both)
# Variants: align (alignment alone: the default's recipe until 2026-12-02), both (both losses, --w-rec 1.0, the default before
# 2026-11-27), both-300 (both losses at half the steps: a both-losses step takes 5.6-6.7 s here in float32,
# so 600 of them would push the default pipeline past its 2 h on a 2-core CPU), align-1200 (twice the
# steps: the default's recipe from 2026-12-02 to 2026-12-03), thought-10 (10 thought tokens before the 10 compression ones), queries-4800 (twice the answered
# queries), mixed (the alignment target normalise(t(query) + t(response)), --target query+response), mixed-1200
# (that target at 1,200 steps: the default's recipe since 2026-12-03, scripts/train_default.sh), self-both-300 (the self-supervised setting, --teacher self, with both losses at 300 steps: the
# paper's recipe against the bundled self-supervised checkpoint's alignment alone; score it beside
# `--model self-supervised`, whose recorded scores can seed OUT/results.json), self-align (the bundled
# self-supervised checkpoint's recipe until 2026-12-06, --teacher self, alignment alone, 600 steps: the control for a
# machine whose precision differs from the bundled run's), self-1200 (that recipe at twice the steps), self-mixed
# (the self-supervised setting toward the default's mixed target, --teacher self --target query+response), mixed-docs
# (the mixed target with --documents: each answer also trains the document side, under the "document"
# instruction, toward its own teacher embedding), self-docs (self-align with --documents: the bundled
# self-supervised checkpoint's recipe since 2026-12-06), mixed-docs-1200 (the default's recipe, mixed-1200, plus
# --documents: against the default's recorded selection row on the same answers), distil (plain
# distillation, --target query: the student trained to be its teacher on the input; how near it comes), distil-1200
# (that at the default's 1,200 steps: against the default's recorded selection row), mixed-seed1 (mixed with
# --seed 1: another initial token noise, ridge sample and data order; the run-to-run noise of a selection mean),
# ridge-only (the mixed target's student as training starts: tokens untrained, align by the ridge fit alone, one step
# at learning rate 0; what the steps add over a linear readout of the frozen backbone), mixed-lr02 (mixed with
# the tokens' learning rate 2e-2 instead of 5e-2), real-1200 (the default's recipe, mixed-1200, on the same
# 2,400 queries with ShareGPT's own recorded answers, ChatGPT's, in place of SmolLM2's: a stronger answerer;
# lab/experiments/real_answers.py), real64 (mixed, 600 steps, on those recorded answers cut to their first 64
# tokens, the length SmolLM2's answers are made at), real64-1200 (the default's recipe, mixed-1200, on those cut
# answers: against the default's recorded selection row), llm2vec-unit-300 / llm2vec-raw-300 (the self-supervised
# setting over the bundled LLM2Vec teacher, smollm2-135m-llm2vec, for 300 steps: its states scaled to unit length
# with the alignment weight 4 x dim, or raw with weight 1 as the official trainer aligns; on the first 1,200
# answered queries, which 300 steps of 8 rows see once with their document rows), llm2vec-unit / llm2vec-raw
# (the same at 600 steps on all the answers), llm2vec-both-300 (llm2vec-unit-300 with both losses, --w-rec 1.0: the
# paper's recipe also trains the soft prompt to be read back as the answer), llm2vec-mixed-300 (the bundled
# self-supervised recipe, --recipe self-supervised, toward the mixed target --target query+response: the LLM2Vec
# teacher's unit mean of its embeddings of the query and of the answer; score it beside the bundled student,
# `--model self-supervised`, trained on the same first 1,200 rows), llm2vec-2400 (the bundled self-supervised recipe
# on twice the queries for twice the steps, --steps 600 --limit 2400: the split's first 2,400 answered queries, each seen
# once with its document row), llm2vec-both-2400 (that recipe, the bundled one since 2026-12-07, with both losses,
# --w-rec 1.0: the paper's recipe on the bundled rows).
# mixed-1200 and self-docs are the bundled checkpoints' recipes (`genembed train --recipe default / self-supervised`).
# The answered queries of scripts/train_default.sh (runs/default), made by the same command, seed ROOT/data.
set -euo pipefail
cd "$(dirname "$0")/../.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export BF16=${BF16-$(.venv/bin/python -c "from genembed.backbone import bf16_is_native; print('--bf16' if bf16_is_native() else '')")}
ROOT=${ROOT:-runs/recipes}
OUT=${OUT:-runs/benchmark-selection}
BACKEND=${BACKEND:-onnx}  # the students' backend for scoring (openvino: bf16 where native, twice as fast there)
ge=.venv/bin/genembed
variants=("$@")
[ ${#variants[@]} -gt 0 ] || variants=(align both)

train() {  # train NAME DATA [extra genembed train arguments]
  local name=$1 data=$2; shift 2
  if [ -e "$ROOT/$name/model/model.safetensors" ]; then return; fi
  local resume=""
  if [ -e "$ROOT/$name/log.jsonl" ]; then resume="--resume"; fi
  local start=$(date +%s)
  $ge train --responses "$data/train.jsonl" --out "$ROOT/$name" $BF16 --no-query-lens $resume "$@"
  echo "$name trained in $(( $(date +%s) - start )) s" | tee -a "$ROOT/times.txt"
}

mkdir -p "$ROOT"
models=()
for v in "${variants[@]}"; do
  data=$ROOT/data; n=2400
  if [ "$v" = queries-4800 ]; then data=$ROOT/data-4800; n=4800; fi
  if [[ "$v" == llm2vec-*-300 ]]; then n=1280; fi  # they train on the first 1,200 answered rows (--limit 1200)
  recorded=""  # ShareGPT's recorded answers in place of SmolLM2's: "all", or the tokens each is cut to
  case $v in  # what each variant changes in `genembed train`
    align|queries-4800) args=() ;;
    both) args=(--w-rec 1.0) ;;
    both-300) args=(--w-rec 1.0 --steps 300 --warmup-steps 15) ;;
    align-1200) args=(--steps 1200 --warmup-steps 60) ;;
    thought-10) args=(--thought-tokens 10) ;;
    mixed) args=(--target query+response) ;;
    distil) args=(--target query) ;;
    distil-1200) args=(--target query --steps 1200 --warmup-steps 60) ;;
    mixed-seed1) args=(--target query+response --seed 1) ;;
    ridge-only) args=(--target query+response --steps 1 --warmup-steps 1 --lr-tokens 0 --lr-projections 0) ;;
    mixed-lr02) args=(--target query+response --lr-tokens 0.02) ;;
    mixed-docs) args=(--target query+response --documents) ;;
    mixed-1200) args=(--recipe default) ;;  # the bundled default's recipe
    mixed-docs-1200) args=(--recipe default --documents) ;;
    real-1200) args=(--recipe default); recorded=all ;;
    real64) args=(--target query+response); recorded=64 ;;
    real64-1200) args=(--recipe default); recorded=64 ;;
    self-both-300) args=(--teacher self --w-rec 1.0 --steps 300 --warmup-steps 15) ;;
    self-align) args=(--teacher self) ;;
    self-1200) args=(--teacher self --steps 1200 --warmup-steps 60) ;;
    self-mixed) args=(--teacher self --target query+response) ;;
    self-docs) args=(--recipe self-supervised --teacher self) ;;  # the self-supervised checkpoint's recipe until 2026-12-07
    # over the bundled LLM2Vec teacher (scripts/train_self_supervised.sh builds it): its pooled states scaled to
    # unit length with genembed's alignment weight (4 x dim), or raw with weight 1 as the official trainer aligns
    llm2vec-unit-300) args=(--recipe self-supervised --teacher smollm2-135m-llm2vec --unit-targets --steps 300 --limit 1200) ;;
    llm2vec-raw-300) args=(--recipe self-supervised --teacher smollm2-135m-llm2vec --no-unit-targets --w-align 1 --steps 300 --limit 1200) ;;
    llm2vec-both-300) args=(--recipe self-supervised --teacher smollm2-135m-llm2vec --unit-targets --w-rec 1.0 --steps 300 --limit 1200) ;;
    llm2vec-mixed-300) args=(--recipe self-supervised --target query+response) ;;
    llm2vec-2400) args=(--recipe self-supervised --steps 600 --limit 2400) ;;
    llm2vec-both-2400) args=(--recipe self-supervised --steps 600 --limit 2400 --w-rec 1.0) ;;
    llm2vec-unit) args=(--recipe self-supervised --teacher smollm2-135m-llm2vec --unit-targets --steps 600) ;;
    llm2vec-raw) args=(--recipe self-supervised --teacher smollm2-135m-llm2vec --no-unit-targets --w-align 1 --steps 600) ;;
    *) echo "unknown variant $v" >&2; exit 2 ;;
  esac
  # the variants name what differs from the recipe these comparisons ran around: alignment to the answer,
  # 600 steps (later values of a repeated option win)
  [[ " ${args[*]-} " == *" --recipe "* ]] || args=(--target response --steps 600 ${args[@]+"${args[@]}"})
  if [ ! -e "$ROOT/data/responses.jsonl" ] && [ -e runs/default/responses.jsonl ]; then
    mkdir -p "$ROOT/data"; cp runs/default/responses.jsonl "$ROOT/data/"  # the same 2,400 rows, same command
  fi
  if [ "$v" = queries-4800 ] && [ ! -e "$data/responses.jsonl" ] && [ -e "$ROOT/data/responses.jsonl" ]; then
    mkdir -p "$data"; cp "$ROOT/data/responses.jsonl" "$data/"  # its first 2,400 are the other variants' rows
  fi
  if [ -n "$recorded" ]; then  # SmolLM2's rows first (their queries), then ShareGPT's answers in their place
    cut=${recorded#all}; data=$ROOT/data-real$cut
    bash scripts/answer_queries.sh "$ROOT/data" "$n"
    [ -e "$data/train.jsonl" ] || .venv/bin/python lab/experiments/real_answers.py "$ROOT/data/train.jsonl" "$data/train.jsonl" $cut
  else
    bash scripts/answer_queries.sh "$data" "$n"
  fi
  train "$v" "$data" ${args[@]+"${args[@]}"}
  models+=(--model "$ROOT/$v/model")
done
$ge benchmark --set selection --no-default --baselines "" --backend "$BACKEND" "${models[@]}" --out "$OUT"
