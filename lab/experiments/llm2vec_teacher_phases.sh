#!/usr/bin/env bash
# The built LLM2Vec teacher after each phase against the raw mean-pool of the frozen backbone, on the broad
# benchmark's SELECTION set: the teacher after MNTP alone (BUILD/mntp), after MNTP then SimCSE
# (BUILD/mntp+BUILD/simcse), and the backbone's mean-pooled last states (the `self` teacher on the input).
# Scores go to OUT/results.{md,json,png}; a rerun scores only what is missing (resumable).
#   usage: bash lab/experiments/llm2vec_teacher_phases.sh [BUILD] [OUT]
#   BUILD: a finished `genembed teacher build` folder, or the name of a bundled teacher (default
#   smollm2-135m-llm2vec: the float16 copy of scripts/train_self_supervised.sh's build that the student trains over)
set -euo pipefail
cd "$(dirname "$0")/../.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
BUILD=${1:-smollm2-135m-llm2vec}
OUT=${2:-runs/benchmark-selection}
ge=.venv/bin/genembed
if [ -d "$BUILD" ]; then
  MNTP=$BUILD/mntp; FINAL=$BUILD/mntp+$BUILD/simcse
else  # a bundled teacher: its MNTP adapter alone, and the teacher by its name (as a checkpoint's config names it)
  MNTP=$(.venv/bin/python -c "import sys; from genembed.teachers import bundled_llm2vec_folder as f; print(f(sys.argv[1]))" "$BUILD")/mntp
  FINAL=$BUILD
fi
# the backbone's mean-pool was scored on every task before (float32, lab/experiments/results/benchmark.json): its
# selection rows seed OUT instead of a rescore (the benchmark rescores them if they were made otherwise)
mkdir -p "$OUT"
.venv/bin/python - "$OUT/results.json" <<'PY'
import json, sys
from pathlib import Path
from genembed.eval.benchmark import task_names
out = Path(sys.argv[1])
results = json.loads(out.read_text()) if out.exists() else {"methods": {}, "stopped": {}}
recorded = json.loads(Path("lab/experiments/results/benchmark.json").read_text())["methods"]["backbone mean-pool"]
if "backbone mean-pool" not in results["methods"]:
    results["methods"]["backbone mean-pool"] = {t: recorded[t] for t in task_names(["selection"])}
    out.write_text(json.dumps(results, indent=2))
PY
$ge benchmark --set selection --no-default --baselines teacher --teacher "$FINAL" --out "$OUT" > /dev/null
$ge benchmark --set selection --no-default --baselines teacher --teacher "$MNTP" --out "$OUT" > /dev/null
$ge benchmark --set selection --no-default --baselines backbone --out "$OUT"
