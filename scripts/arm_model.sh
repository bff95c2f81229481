#!/usr/bin/env bash
# The robot's model from scratch (`make arm-model`): demos -> teacher -> DDIM pairs -> FDK and KDM
# students -> ONNX (+ the teacher's sampler) -> fidelity report -> dnk_bringup/models/.
# Every stage resumes: rerun after an interruption and finished stages are skipped.
# Scale: ARM_DEMO_PRESET (config/arm_demos.yaml: small | multi | paper), ARM_DEMO_SCENES (overrides the
# preset's scene count), ARM_WINDOW_STRIDE (one teacher window every N demo steps: memory), ARM_TEACHER_STEPS,
# ARM_PAIRS, ARM_STUDENT_STEPS (defaults: what the shipped model used). ARM_SHIP=0 builds and reports without
# replacing dnk_bringup/models (to compare a candidate model first).
set -euo pipefail
# shellcheck source=scripts/prepare.sh
. "$(dirname "${BASH_SOURCE[0]}")/prepare.sh"
DEMO_PRESET="${ARM_DEMO_PRESET:-multi}"
DEMO_SCENES="${ARM_DEMO_SCENES:-8000}"
DEMOS="${ARM_DEMOS:-datasets/arm_demos_m8k}"
ART="${ARM_ARTIFACTS:-artifacts/arm}"
WINDOW_STRIDE="${ARM_WINDOW_STRIDE:-4}"
TEACHER_STEPS="${ARM_TEACHER_STEPS:-14000}"
PAIRS="${ARM_PAIRS:-32768}"
HELDOUT_PAIRS="${ARM_HELDOUT_PAIRS:-2048}"
STUDENT_STEPS="${ARM_STUDENT_STEPS:-10000}"
THREADS="${ARM_THREADS:-2}"
# the students' settings (reports/arm_distill_m8k: free-entry losses; FDK's targets through their own encoder;
# FDK's latents not layer-normalized, as the shipped model was trained: latent_norm is measured on locomotion only)
STUDENT_SET=(--set fdk.loss.entries=free --set kdm.loss.entries=free --set fdk.separate_encoders=true
             --set fdk.latent_norm=false)
MODELS="dnk_bringup/models"

echo "arm-model: demonstrations -> $DEMOS"
dnk-train gen-arm-demos --preset "$DEMO_PRESET" --out "$DEMOS" --set "scenes=$DEMO_SCENES"

if [ ! -f "$ART/teacher.json" ]; then
  resume=()
  [ -d "$ART/runs/teacher/checkpoints" ] && resume=(--resume)
  echo "arm-model: teacher ($TEACHER_STEPS steps)"
  dnk-train train-teacher --task arm --preset small --dataset "$DEMOS" --artifacts "$ART" --threads "$THREADS" \
    --set "teacher.train.steps=$TEACHER_STEPS" --set "dataset.window_stride=$WINDOW_STRIDE" "${resume[@]}"
fi

echo "arm-model: within-prior spread of the teacher's targets, DDPM vs DDIM"
[ -f "$ART/pairs/spread.json" ] || dnk-train pair-spread --artifacts "$ART" --preset small --threads "$THREADS"
echo "arm-model: DDIM pairs ($PAIRS train, $HELDOUT_PAIRS held out)"
dnk-train gen-pairs --artifacts "$ART" --preset small --threads "$THREADS" --num-pairs "$PAIRS" --resume
dnk-train gen-pairs --artifacts "$ART" --preset small --threads "$THREADS" --split heldout \
  --num-pairs "$HELDOUT_PAIRS" --resume

for model in fdk kdm; do
  resume=()
  [ -d "$ART/runs/$model/checkpoints" ] && resume=(--resume)
  echo "arm-model: student $model ($STUDENT_STEPS steps)"
  dnk-train train-student --model "$model" --artifacts "$ART" --preset small --threads "$THREADS" \
    --steps "$STUDENT_STEPS" "${STUDENT_SET[@]}" "${resume[@]}"
done

echo "arm-model: ONNX export (parity-gated) and fidelity report"
dnk-train export --models fdk kdm --teacher-model --artifacts "$ART" --preset small --threads "$THREADS" \
  "${STUDENT_SET[@]}"
REPORT="${ARM_REPORT:-reports/arm_distill}"
dnk-train distill-report --models fdk kdm --artifacts "$ART" --preset small --threads 1 --out "$REPORT" \
  "${STUDENT_SET[@]}"

if [ "${ARM_SHIP:-1}" = 0 ]; then
  echo "arm-model: ARM_SHIP=0: models left in $ART/students, report in $REPORT"
  exit 0
fi
mkdir -p "$MODELS"
for pair in "fdk:arm-student" "teacher:arm-teacher"; do
  src="${pair%%:*}" dst="${pair##*:}"
  cp "$ART/students/$src.onnx" "$MODELS/$dst.onnx"
  cp "$ART/students/$src.json" "$MODELS/$dst.json"
  cp "$ART/students/$src.parity.npz" "$MODELS/$dst.parity.npz"
done
# the student's INT8 copy (dynamic MatMul weights, gated against the float model): policy:=student-int8
dnk-train quantize --model "$MODELS/arm-student.onnx"
echo "arm-model: shipped $MODELS/arm-student.onnx, arm-student-int8.onnx and arm-teacher.onnx (+ manifests, parity samples)"
