#!/usr/bin/env bash
# Reduced-scale halfcheetah run (small preset): teacher in one process, classifier then IQL in
# another (2 cores), each with torch threads 1 and nice 10. Resumable: rerun with RESUME=--resume.
set -eo pipefail
cd "$(dirname "$0")/../.."
. scripts/env.sh
TASK=${TASK:-halfcheetah}  # halfcheetah | walker2d
OUT=${OUT:-artifacts/$TASK}
mkdir -p "$OUT"
R=${RESUME:-}
( nice -n 10 python -m dnk_training.cli train-teacher --task "$TASK" --preset small --artifacts "$OUT" --threads 1 $R > "$OUT/train_teacher.log" 2>&1 ) &
A=$!
( nice -n 10 python -m dnk_training.cli train-classifier --task "$TASK" --preset small --artifacts "$OUT" --threads 1 $R > "$OUT/train_classifier.log" 2>&1 \
  && nice -n 10 python -m dnk_training.cli train-iql --task "$TASK" --preset small --artifacts "$OUT" --threads 1 $R > "$OUT/train_iql.log" 2>&1 ) &
B=$!
wait $A; wait $B
