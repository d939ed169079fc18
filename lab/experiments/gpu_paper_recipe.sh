#!/usr/bin/env bash
# The paper's recipe on the real SmolLM2-135M, on a lent GPU, then the decoding task and the
# selection benchmark here. The GPU machine is offline and holds none of the data packages, and a call
# carries 64 MiB with the working tree (~40 MiB: the bundled checkpoints and LLM2Vec adapters), so the 94 MiB GGUF
# travels in parts sized to what is left (five at that tree size), one per call,
# on a machine kept warm between them (ignored paths already there stay). The teacher is the paper's kind, the
# LLM2Vec copy of the backbone bundled in genembed/llm2vec-smollm2/ (its adapters travel with the working tree;
# TEACHER=self gives the backbone's own mean-pooled states instead).
#
# Two runs train side by side on the one GPU (a 135M step is launch-bound there, lab/gpu/README.md), both with the
# paper's losses (reconstruction + alignment) at its batch 32, on the same 2,400 answered queries as every
# CPU recipe (runs/recipes/data, from lab/experiments/broad_recipes.sh):
#   paper: the paper's learning rate, 3e-4 for tokens and projections;
#   tuned: the CPU-tuned rates (genembed train's defaults, 5e-2 tokens / 1e-3 projections).
# Each trains STEPS steps (default 1000, a fifth of the paper's 5,000) under a wall-clock guard: the whole
# command ends within DEADLINE_SECONDS (default 560; set it from the device's budget_left_s, less ~60 s for
# the call's transfers, when that is less than the call's 600 s). A run cut by the guard comes back as its
# last resume/ state (saved every 100 steps), and its NOTE says so.
#
#   bash lab/experiments/gpu_paper_recipe.sh pack        # here: runs/gpu27/p1..pN (parts; the last: rows, gguf wheel)
#   then N device `run` calls, back to back (an idle machine goes back after 30 s):
#     carry [runs/gpu27/p1] .. [runs/gpu27/pN-1]  command: nvidia-smi -L; ls -l runs/gpu27/*
#     carry [runs/gpu27/pN]  command: DEADLINE_SECONDS=N bash lab/experiments/gpu_paper_recipe.sh device
#                           (timeout_s N + 30; N = min(560, budget_left_s - 90), budget_left_s from `status`)
#   bash lab/experiments/gpu_paper_recipe.sh score FILES_AT   # here: unpack, selection benchmark, decoding task
#     (the run's files_at; TASKS=a,b scores only those benchmark tasks)
#
# `device` also runs here on the CPU for a check of the whole path (PYTHON=.venv/bin/python
# GENEMBED_DEVICE=cpu STEPS=2 BATCH=4 LIMIT=8 OUT=/tmp/out SITE=/tmp/site bash ... device; SAVE_EVERY=1
# and a short DEADLINE_SECONDS check the guard).
set -euo pipefail
cd "$(dirname "$0")/../.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
DIR=runs/gpu27
BACKBONE=smollm2-135m-instruct  # the default alias: its package and file come from genembed.backbone.ALIASES
VARIANTS=(paper tuned)

variant_args() {  # the `genembed train` arguments of a variant (both: the paper's losses at its batch)
  local common=(--teacher "${TEACHER:-smollm2-135m-llm2vec}" --target response --w-rec 1.0 --batch-size "${BATCH:-32}" --steps "${STEPS:-1000}"
                --warmup-steps $(( ${STEPS:-1000} / 20 )) --save-every "${SAVE_EVERY:-100}" ${LIMIT:+--limit "$LIMIT"})
  case $1 in
    paper) ARGS=("${common[@]}" --lr-tokens 3e-4 --lr-projections 3e-4) ;;
    tuned) ARGS=("${common[@]}") ;;
    *) echo "unknown variant $1" >&2; exit 2 ;;
  esac
}

pack() {  # the three carries: GGUF parts (each under ~32 MiB), the answered rows and the gguf wheel in the last
  local gguf rows=runs/recipes/data/train.jsonl
  gguf=$(.venv/bin/python -c "from genembed.backbone import ALIASES; from genembed.data import package_file
print(package_file(*ALIASES['$BACKBONE']))")
  # the rows every CPU recipe trained on (lab/experiments/broad_recipes.sh): made here if missing (~31 min, resumable)
  [ -s "$rows" ] || bash scripts/answer_queries.sh runs/recipes/data 2400
  rm -rf "$DIR"/p[0-9]*; mkdir -p "$DIR"
  # a call carries the tracked tree and one part within 64 MiB; 3 MiB are kept for the rows, the wheel and slack
  local size tree room n last; size=$(stat -c %s "$gguf"); tree=$(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1)
  room=$(( 61 * 1024 * 1024 - tree )); n=$(( (size + room - 1) / room ))
  [ "$room" -gt 0 ] && [ "$n" -le 9 ] || { echo "the working tree ($tree bytes) leaves no room to carry the GGUF"; exit 3; }
  split -n "$n" -d -a 1 "$gguf" "$DIR/part"
  for i in $(seq 1 "$n"); do mkdir -p "$DIR/p$i"; mv "$DIR/part$(( i - 1 ))" "$DIR/p$i/gguf.part"; done
  last=$DIR/p$n
  sha256sum < "$gguf" | cut -d' ' -f1 > "$last/gguf.sha256"
  gzip -9 -c "$rows" > "$last/train.jsonl.gz"
  local version; version=$(.venv/bin/python -c "import importlib.metadata as m; print(m.version('gguf'))")
  .venv/bin/python -m pip download -q --no-deps --only-binary=:all: -d "$last" "gguf==$version"  # the one used here
  du -sh "$DIR"/p[0-9]*
}

device() {  # on the GPU machine: join, install, train both variants side by side, pack the results into $OUT
  : "${OUT:?OUT must name the folder whose files come back}"
  local py=${PYTHON:-python3} site=${SITE:-/tmp/site} start=$(date +%s)
  exec > >(tee -a "$OUT/device.log") 2>&1
  local package file  # where the alias looks: a package found before any installed one, holding the joined file
  read -r package file < <(PYTHONPATH=$PWD "$py" -c "from genembed.backbone import ALIASES; print(*ALIASES['$BACKBONE'])")
  mkdir -p "$site/$package"; : > "$site/$package/__init__.py"
  local last; last=$(ls -d "$DIR"/p[0-9]* | sort | tail -1)  # fewer than ten parts: the names sort in order
  cat $(ls -d "$DIR"/p[0-9]* | sort | sed 's|$|/gguf.part|') > "$site/$package/$file"
  if [ "$(sha256sum < "$site/$package/$file" | cut -d' ' -f1)" != "$(cat "$last/gguf.sha256")" ]; then
    echo "the joined GGUF does not match its SHA-256: a part is missing or stale (ls below)"; ls -l "$DIR"/*; exit 3
  fi
  gzip -d -c "$last/train.jsonl.gz" > "$DIR/train.jsonl"
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" "$last"/gguf-*.whl
  export PYTHONPATH="$PWD:$site" GENEMBED_CACHE=${GENEMBED_CACHE:-/tmp/genembed-cache}
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || true
  "$py" -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__, 'cuda', torch.cuda.is_available())"
  "$py" -c "from genembed.backbone import load_backbone; b = load_backbone('$BACKBONE'); print('backbone on', b.device)"
  # the training guard: what is left of DEADLINE_SECONDS (the whole command's budget) after the set-up, less
  # 30 s to pack the results
  local guard=$(( ${DEADLINE_SECONDS:-560} - ($(date +%s) - start) - 30 ))
  echo "ready after $(( $(date +%s) - start )) s; training guard $guard s"
  [ "$guard" -gt 60 ] || { echo "less than a minute left for training: not started"; exit 4; }
  local v pids=()
  for v in "${VARIANTS[@]}"; do
    variant_args "$v"; rm -rf "$DIR/$v"
    timeout --signal=INT --kill-after=15 "$guard" "$py" -m genembed train \
      --responses "$DIR/train.jsonl" --out "$DIR/$v" "${ARGS[@]}" > "$OUT/$v.train.log" 2>&1 &
    pids+=($!)
  done
  local i rc
  for i in "${!VARIANTS[@]}"; do
    v=${VARIANTS[$i]}; rc=0; wait "${pids[$i]}" || rc=$?
    local run=$DIR/$v steps; mkdir -p "$run"; steps=0; [ ! -e "$run/log.jsonl" ] || steps=$(wc -l < "$run/log.jsonl")
    if [ -e "$run/model/model.safetensors" ]; then
      echo "$v: finished, $steps steps (exit $rc)" > "$run/NOTE"
    elif [ -e "$run/resume/model.safetensors" ]; then  # cut by the guard: its last saved state
      local saved; saved=$("$py" -c "import torch; print(torch.load('$run/resume/trainer.pt', weights_only=False)['step'])")
      rm -f "$run/resume/trainer.pt"; mv "$run/resume" "$run/model"
      echo "$v: cut by the $guard s guard after $steps logged steps; model/ is its state at step $saved (exit $rc)" > "$run/NOTE"
    else
      echo "$v: no model (exit $rc)" > "$run/NOTE"
    fi
    cat "$run/NOTE"
    tar czf "$OUT/$v.tgz" -C "$run" $(cd "$run" && ls -d model log.jsonl train_config.json losses.png NOTE 2>/dev/null)
  done
  echo "done after $(( $(date +%s) - start )) s"
}

score() {  # here: the returned runs unpacked into runs/gpu27/VARIANT, then scored
  local from=${1:?usage: score FOLDER_WITH_THE_TGZ_FILES} v models=() ge=.venv/bin/genembed
  for v in "${VARIANTS[@]}"; do
    rm -rf "${DIR:?}/$v"; mkdir -p "$DIR/$v"; tar xzf "$from/$v.tgz" -C "$DIR/$v"; cat "$DIR/$v/NOTE"
    [ ! -e "$DIR/$v/log.jsonl" ] || cp "$DIR/$v/log.jsonl" "lab/experiments/results/gpu-$v-train-log.jsonl"
    [ ! -e "$DIR/$v/train_config.json" ] || cp "$DIR/$v/train_config.json" "lab/experiments/results/gpu-$v-train-config.json"
    [ ! -e "$DIR/$v/model/model.safetensors" ] || models+=(--model "$DIR/$v/model")
  done
  [ ${#models[@]} -gt 0 ] || { echo "no run came back with a model: nothing to score" >&2; exit 3; }
  cp "$from/device.log" lab/experiments/results/gpu-paper-recipe-device.log
  # scores are cached in their folders (a killed scoring resumes), so the folders are named after these runs
  local tag; tag=$(cat "$from"/*.tgz | sha1sum | cut -c1-8)
  local which=(--set selection); [ -z "${TASKS:-}" ] || which=(--tasks "$TASKS")  # TASKS: a quick check
  $ge benchmark "${which[@]}" --no-default --baselines "" --backend onnx "${models[@]}" --out "runs/bench-gpu27-$tag"
  $ge eval --tasks decoding --no-default --baselines "" --skip-cost "${models[@]}" --out "runs/eval-gpu27-$tag"
}

case ${1:-} in
  pack) pack ;;
  device) device ;;
  score) shift; score "$@" ;;
  *) echo "usage: bash lab/experiments/gpu_paper_recipe.sh pack | device | score FOLDER" >&2; exit 2 ;;
esac
