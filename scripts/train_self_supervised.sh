#!/usr/bin/env bash
# Build the bundled self-supervised checkpoint (genembed/self-supervised/, `genembed.load("self-supervised")`) and
# its teacher from scratch, offline: the paper's own setting, no labelled data anywhere.
#   1. the LLM2Vec teacher: `genembed teacher build --recipe cpu` makes SmolLM2 bidirectional, then trains it
#      with MNTP and SimCSE on unlabeled ShareGPT queries and answers (genembed/teacher_build/config.py) into
#      TEACHER (default runs/self-supervised-teacher)
#   2. its adapters are bundled as genembed/llm2vec-smollm2/ (scripts/bundle_teacher.py), which
#      `load_teacher("smollm2-135m-llm2vec")` opens from a clean install; its loss plots go to lab/bundled/
#   3. the student: `genembed train --recipe self-supervised` (genembed/recipe.py) over that teacher, on the first
#      2,400 answered ShareGPT queries, the default's (scripts/build_checkpoint.sh: the stages)
# Every stage resumes where it stopped if the script is run again.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
TEACHER=${TEACHER:-runs/self-supervised-teacher}
resume=""
if [ -e "$TEACHER/build_config.json" ]; then resume="--resume"; fi  # finished phases are skipped
.venv/bin/genembed teacher build --recipe cpu --out "$TEACHER" $resume
.venv/bin/python scripts/bundle_teacher.py "$TEACHER" smollm2-135m-llm2vec
mkdir -p lab/bundled
cp "$TEACHER/mntp-loss.png" lab/bundled/self-supervised-teacher-mntp-loss.png
cp "$TEACHER/simcse-loss.png" lab/bundled/self-supervised-teacher-simcse-loss.png
cp "$TEACHER/log.jsonl" lab/bundled/self-supervised-teacher-log.jsonl
# its query lens holds its 2,400 training queries (2,351 distinct); on 2026-12-07 the student's stages took 12 min of
# answering (the 781 answers still missing), 8 min of teacher targets, about 83 min of training (8.3 s a step, the
# median: both losses) and 8 min of lens
LENS=training QUERIES=2400 exec bash scripts/build_checkpoint.sh self-supervised --recipe self-supervised
