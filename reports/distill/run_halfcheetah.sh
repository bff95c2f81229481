#!/usr/bin/env bash
# Reduced-scale DNK distillation on HalfCheetah (H = 4): pairs -> five students -> ONNX export -> report.
# Usage: bash reports/distill/run_halfcheetah.sh   (TEACHER=..., CLASSIFIER=..., IQL=... override the
# checkpoints; PAIR_MINUTES caps pair generation; STEPS overrides the preset's per-student budget).
set -eo pipefail
cd "$(dirname "$0")/../.."
. scripts/env.sh  # before `set -u`: the ROS setup scripts read unset variables
set -u
ART=${ART:-artifacts/halfcheetah}
TEACHER=${TEACHER:-$ART/teacher.json}
CLASSIFIER=${CLASSIFIER:-$ART/classifier.json}
IQL=${IQL:-$ART/iql.json}
PAIR_MINUTES=${PAIR_MINUTES:-10}
STEPS=${STEPS:-4000}
dnk_train() {  # the dnk-train console script, or its entry point when the workspace is not rebuilt yet
  if command -v dnk-train >/dev/null; then nice -n 10 dnk-train "$@"
  else nice -n 10 python -c 'import sys; from dnk_training.cli import main; sys.exit(main(sys.argv[1:]))' "$@"; fi
}
A=(--artifacts "$ART" --teacher "$TEACHER" --classifier "$CLASSIFIER" --iql "$IQL" --preset small)
dnk_train gen-pairs "${A[@]}" --resume --split heldout
dnk_train gen-pairs "${A[@]}" --resume --split train --max-minutes "$PAIR_MINUTES"
# CD calls the teacher at every step, so it runs beside the four cheap students (same steps for all).
dnk_train train-student "${A[@]}" --model cd --steps "$STEPS" > "$ART/train_student_cd.log" 2>&1 &
CD_PID=$!
for m in fdk kdm kdmf ct; do dnk_train train-student "${A[@]}" --model "$m" --steps "$STEPS"; done
wait "$CD_PID"
dnk_train export "${A[@]}" --models fdk kdm kdmf cd ct
dnk_train distill-report "${A[@]}" --out reports/distill
