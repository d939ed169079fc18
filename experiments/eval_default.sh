#!/usr/bin/env bash
# The bundled default, retrained (scripts/train_default.sh), scored by `genembed eval` on its five tasks
# beside the rows recorded in docs/eval-default.json, which do not depend on it (teacher, backbone
# mean-pool, ridge, HyDE). The previous default's row is kept as "genembed default before stop 36
# (600 steps)". The new row takes that row's encode-cost columns (the weights do not change what an
# encode runs; those were measured side by side with the baselines' on an idle machine) and --skip-cost
# keeps them. Writes docs/eval-default.{md,json,png}.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
OUT=${OUT:-runs/eval-default}
mkdir -p "$OUT"
if [ ! -e "$OUT/results.json" ]; then
  .venv/bin/python - "$OUT/results.json" <<'PY'
import json, sys
results = json.load(open("docs/eval-default.json"))
old = results["methods"]
results["methods"] = {("genembed default before stop 36 (600 steps)" if k == "genembed default" else k): v
                      for k, v in old.items()}
results["methods"]["genembed default"] = {k: old["genembed default"][k] for k in ("seconds_per_1k", "ms_per_query_alone")}
json.dump(results, open(sys.argv[1], "w"), indent=2)
PY
fi
start=$(date +%s)
.venv/bin/genembed eval --baselines "" --skip-cost --out "$OUT"
echo "scored in $(( $(date +%s) - start )) s"
for ext in md json png; do cp "$OUT/results.$ext" "docs/eval-default.$ext"; done
