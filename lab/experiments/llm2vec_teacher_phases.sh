#!/usr/bin/env bash
# The built LLM2Vec teacher after each phase against the raw mean-pool of the frozen backbone, on the broad
# benchmark's SELECTION set: the teacher after MNTP alone (BUILD/mntp), after MNTP then SimCSE
# (BUILD/mntp+BUILD/simcse), and the backbone's mean-pooled last states (the `self` teacher on the input).
# Scores go to OUT/results.{md,json,png}; a rerun scores only what is missing (resumable).
#   usage: bash lab/experiments/llm2vec_teacher_phases.sh [BUILD] [OUT]
#   BUILD: a finished `genembed teacher build --recipe cpu` (scripts/train_self_supervised.sh: runs/self-supervised-teacher)
set -euo pipefail
cd "$(dirname "$0")/../.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
BUILD=${1:-runs/self-supervised-teacher}
OUT=${2:-runs/benchmark-selection}
ge=.venv/bin/genembed
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
$ge benchmark --set selection --no-default --baselines teacher --teacher "$BUILD/mntp" --out "$OUT" > /dev/null
$ge benchmark --set selection --no-default --baselines teacher --teacher "$BUILD/mntp+$BUILD/simcse" --out "$OUT" > /dev/null
$ge benchmark --set selection --no-default --baselines backbone --out "$OUT"
