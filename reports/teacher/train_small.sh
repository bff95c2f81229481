#!/usr/bin/env bash
# Reduced-scale locomotion models (small preset): teacher in one process, classifier then IQL in
# another (2 cores), each with torch threads 1 and nice 10. Resumable: rerun to continue; a model
# already written is skipped, one with checkpoints resumes from the newest.
set -eo pipefail
cd "$(dirname "$0")/../.."
. scripts/env.sh
TASK=${TASK:-halfcheetah}  # halfcheetah | walker2d
OUT=${OUT:-artifacts/$TASK}
mkdir -p "$OUT"
model() {  # name: train it unless written, resuming from its checkpoints when it has some
  [ -f "$OUT/$1.json" ] && return 0
  local resume=()
  compgen -G "$OUT/runs/$1/checkpoints/ckpt_*.json" >/dev/null && resume=(--resume)
  nice -n 10 python -m dnk_training.cli "train-$1" --task "$TASK" --preset small --artifacts "$OUT" --threads 1 \
    "${resume[@]}" > "$OUT/train_$1.log" 2>&1
}
( model teacher ) &
A=$!
( model classifier && model iql ) &
B=$!
wait $A; wait $B
