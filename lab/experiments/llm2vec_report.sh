#!/usr/bin/env bash
# The bundled self-supervised checkpoint over its LLM2Vec teacher, scored ONCE on the broad benchmark's REPORT set
# beside that teacher on the input (smollm2-135m-llm2vec), the backbone's raw mean-pool and the previous
# self-supervised checkpoint (raw mean-pool teacher, until 2026-12-07), into OUT (default runs/benchmark), seeded
# with the recorded report table (lab/experiments/results/benchmark.json). PREVIOUS=NAME keeps that table's
# "genembed self-supervised" row, the checkpoint bundled before this one, under NAME (the first report over the LLM2Vec
# teacher kept the raw mean-pool teacher's as "genembed self-supervised before 2026-12-07 (raw mean-pool teacher)").
# Resumable (a rerun scores only what is missing). Then the recorded table is replaced by OUT's.
#   usage: [PREVIOUS=NAME] bash lab/experiments/llm2vec_report.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
OUT=${OUT:-runs/benchmark}
RECORDED=lab/experiments/results/benchmark
mkdir -p "$OUT"
.venv/bin/python - "$RECORDED.json" "$OUT/results.json" "${PREVIOUS:-}" <<'PY'
import json, os, sys
recorded, out, previous = sys.argv[1:]
results = json.load(open(out if os.path.exists(out) else recorded))  # a rerun continues OUT's results
methods = results["methods"]
if previous and previous not in methods and "genembed self-supervised" in methods:  # once: a rerun finds it there
    methods[previous] = methods.pop("genembed self-supervised")
json.dump(results, open(out, "w"), indent=2)
PY
.venv/bin/genembed benchmark --set report --no-default --model self-supervised --baselines teacher,backbone \
    --teacher smollm2-135m-llm2vec --backend onnx --out "$OUT"
cp "$OUT/results.json" "$RECORDED.json"
cp "$OUT/results.md" "$RECORDED.md"
cp "$OUT/results.png" "$RECORDED.png"
