#!/usr/bin/env bash
# The bundled self-supervised checkpoint over its LLM2Vec teacher, scored ONCE on the broad benchmark's REPORT set
# beside that teacher on the input (smollm2-135m-llm2vec), the backbone's raw mean-pool and the previous
# self-supervised checkpoint (raw mean-pool teacher, until 2026-12-07), into OUT (default runs/benchmark), seeded
# with the recorded report table (lab/experiments/results/benchmark.json) whose "genembed self-supervised" row
# is the previous checkpoint's: it is kept under its dated name. PREVIOUS=NAME keeps the recorded row of the
# checkpoint bundled before this one (the "genembed self-supervised" row already over the LLM2Vec teacher) under NAME.
# Resumable (a rerun scores only what is missing). Then the recorded table is replaced by OUT's.
#   usage: [PREVIOUS=NAME] bash lab/experiments/llm2vec_report.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
OUT=${OUT:-runs/benchmark}
RECORDED=lab/experiments/results/benchmark
mkdir -p "$OUT"
if [ ! -e "$OUT/results.json" ]; then
  .venv/bin/python - "$RECORDED.json" "$OUT/results.json" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))
methods = results["methods"]
if "genembed self-supervised before 2026-12-07 (raw mean-pool teacher)" not in methods:
    methods["genembed self-supervised before 2026-12-07 (raw mean-pool teacher)"] = methods.pop("genembed self-supervised")
json.dump(results, open(sys.argv[2], "w"), indent=2)
PY
fi
if [ -n "${PREVIOUS:-}" ]; then  # once: later runs find PREVIOUS there and leave the new row alone
  .venv/bin/python - "$OUT/results.json" "$PREVIOUS" <<'PY'
import json, sys
path, name = sys.argv[1], sys.argv[2]
results = json.load(open(path))
methods = results["methods"]
if name not in methods and "genembed self-supervised" in methods:
    methods[name] = methods.pop("genembed self-supervised")
    json.dump(results, open(path, "w"), indent=2)
PY
fi
.venv/bin/genembed benchmark --set report --no-default --model self-supervised --baselines teacher,backbone \
    --teacher smollm2-135m-llm2vec --backend onnx --out "$OUT"
cp "$OUT/results.json" "$RECORDED.json"
cp "$OUT/results.md" "$RECORDED.md"
cp "$OUT/results.png" "$RECORDED.png"
