#!/usr/bin/env bash
# After the bundled default is retrained (scripts/train_default.sh): every figure the README and docs
# report for it, scored again, beside the recorded rows that do not depend on it. Stages (all by
# default, or those named):
#   benchmark  the broad benchmark, both sets, float32, the student on onnx, as its other rows were
#              (lab/experiments/results/benchmark.{md,json,png}; 14 min on an AVX-512 machine)
#   eval       `genembed eval`'s five tasks (lab/reports/eval-default.{md,json,png}; 24 min there on 2026-12-04, in native bf16; on an
#              AVX2 CPU, where bf16 is emulated, over 2 h: Q→A 43 min, safety 32, classification 12, clustering 3,
#              decoding more than an hour; each task's score is saved as it is made, so a stopped run resumes); the new row
#              takes the previous one's encode-cost columns (weights do not change what an encode runs;
#              those were measured side by side with the baselines on an idle machine; --skip-cost)
#   index      HNSW against exact search (lab/experiments/index_recall.py -> lab/reports/index-recall.md; 3 min)
#   examples   decoded examples (lab/experiments/decoded_examples.py -> lab/reports/decoded-examples.md; 1 min)
#   fixture    the bit-for-bit fixture of tests/test_integration.py (scripts/default_fixture.py)
# The recorded default's rows are kept under the name PREVIOUS (older previous defaults' rows stay as they
# are). A stage whose folder under runs/ exists resumes (the scores it holds record what made them).
# REUSE="FILE|METHOD" seeds the new default's benchmark row with METHOD's scores in FILE (a results.json of
# lab/experiments/broad_recipes.sh that scored the run the default was copied from): the benchmark checks
# each score's made_by against the default's weights and scores again any made by others.
#   usage: bash lab/experiments/rescore_default.sh [STAGE ...]
set -euo pipefail
cd "$(dirname "$0")/../.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
PREVIOUS=${PREVIOUS:-"genembed default before 2026-12-03 (alignment to the response, 1,200 steps)"}
stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(fixture benchmark eval index examples)

seed() {  # seed RECORDED OUT/results.json: the recorded rows, the default's renamed as the previous one's
  [ -e "$2" ] && return
  mkdir -p "$(dirname "$2")"
  .venv/bin/python - "$1" "$2" "$PREVIOUS" "${3:-}" "${4:-}" <<'PY'
import json, sys
recorded, out, previous, keep_cost, reuse = sys.argv[1:]
results = json.load(open(recorded))
old = results["methods"]
if previous not in old:  # the recorded default becomes the previous one
    old = {(previous if k == "genembed default" else k): v for k, v in old.items()}
results["methods"] = {k: v for k, v in old.items() if k != "genembed default"}
if keep_cost:
    results["methods"]["genembed default"] = {k: old[previous][k] for k in ("seconds_per_1k", "ms_per_query_alone")}
if reuse:
    file, method = reuse.split("|", 1)
    results["methods"]["genembed default"] = json.load(open(file))["methods"][method]
json.dump(results, open(out, "w"), indent=1)
PY
}

for stage in "${stages[@]}"; do
  start=$(date +%s)
  case $stage in
    benchmark)
      seed lab/experiments/results/benchmark.json runs/benchmark-default/results.json "" "${REUSE:-}"
      .venv/bin/genembed benchmark --baselines "" --backend onnx --no-bf16 --out runs/benchmark-default
      for ext in md json png; do cp "runs/benchmark-default/results.$ext" "lab/experiments/results/benchmark.$ext"; done ;;
    eval)
      seed lab/reports/eval-default.json runs/eval-default/results.json keep-cost
      .venv/bin/genembed eval --baselines "" --skip-cost --bf16 --out runs/eval-default  # (the recorded rows' precision)
      for ext in md json png; do cp "runs/eval-default/results.$ext" "lab/reports/eval-default.$ext"; done ;;
    index) .venv/bin/python lab/experiments/index_recall.py ;;
    examples) .venv/bin/python lab/experiments/decoded_examples.py ;;
    fixture) .venv/bin/python scripts/default_fixture.py ;;
    *) echo "unknown stage $stage (benchmark, eval, index, examples, fixture)" >&2; exit 2 ;;
  esac
  echo "$stage done in $(( $(date +%s) - start )) s"
done
