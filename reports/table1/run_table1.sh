#!/usr/bin/env bash
# Table I on HalfCheetah at CPU scale: every row from 3 trained models (training seeds 0-2), full
# 1000-step episodes, one harness (dnk-eval d4rl) and one stopwatch for students and teacher.
#
#   bash reports/table1/run_table1.sh                  # everything, resumable: rerun to continue
#   PARTS="eval report" bash reports/table1/run_table1.sh
#   TASK=walker2d OUT=reports/table1/walker2d bash reports/table1/run_table1.sh   # Walker2d-v5 (H = 32)
#   A study of a student setting (reports/table1/run_latent_norm_study.sh): STUDENT_SET="fdk.latent_norm=true"
#   (--set for train-student), VARIANT (put in the rows' names: "DNK latent-norm (IQL)"), ROWS (eval rows),
#   BESIDE (a table folder whose results/*.json join the report; the reference row is this run's DNK (IQL)).
#
# Parts, in order (each skips what is already on disk):
#   models   teacher, return classifier, IQL critic (reports/teacher/train_small.sh), when missing;
#   pairs    102,400 train + 2,048 held-out DDIM pairs (preset table1: 2048 priors per teacher call),
#            and the within-prior spread of DDPM vs DDIM targets (pairs/spread.json);
#   students fdk kdm kdmf cd ct x training seeds, 50 epochs each, two at a time (2 cores), then ONNX;
#   fidelity held-out fidelity, parameter counts and latency per training seed -> $OUT/fidelity/;
#   floor    FDK at the old rank r = 32 < m = 64 (training seed 0, same pairs and budget) beside the
#            default r = m: the L_lat floor it logs, before and after -> $OUT/lat_floor.json;
#   eval     every row at 1000 steps: students 3 eval seeds x 5 episodes per trained model, DNK with the
#            classifier selector and the teacher 3 eval seeds x TEACHER_EPISODES (their decisions cost
#            65 ms and ~1 s here; the teacher runs one job per eval seed, slowest first); two
#            single-threaded evaluations at a time and nothing else;
#   report   table1.md/json, significance.md/json, pareto.png, candidates_pca.png, fidelity.md.
set -eo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
# shellcheck disable=SC1091
. scripts/env.sh  # (the colcon setup script it sources is not `set -u` clean)
set -u
export MPLBACKEND=Agg OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
TASK="${TASK:-halfcheetah}"  # halfcheetah | walker2d: dnk_training/config/<task>.yaml
ART="${ART:-artifacts/$TASK}"
OUT="${OUT:-reports/table1}"
PRESET="${PRESET:-table1}"
TRAIN_SEEDS=(${TRAIN_SEEDS:-0 1 2})
MODELS=(${MODELS:-fdk kdm kdmf cd ct})  # MODELS="fdk kdm kdmf ct": a subset (e.g. the cheap students first)
EPISODES="${EPISODES:-5}"
TEACHER_EPISODES="${TEACHER_EPISODES:-1}"
DATA="${DATA:-${TASK}_medium_expert-dnk-v0.hdf5}"
STUDENT_SET="${STUDENT_SET:-}"  # space-separated key=value, each passed to train-student as --set
VARIANT="${VARIANT:+ $VARIANT}"  # a study's name in its rows' labels
ROWS=" ${ROWS:-teacher classifier students} "
BESIDE="${BESIDE:-}"
case "$TASK" in halfcheetah) ENV_ID=HalfCheetah-v5;; walker2d) ENV_ID=Walker2d-v5;;
  *) echo "run_table1: TASK=$TASK unknown; use halfcheetah or walker2d" >&2; exit 2;; esac
PARTS=" ${PARTS:-models pairs students fidelity floor eval report} "
has() { [[ "$PARTS" == *" $1 "* ]]; }
train() { nice -n 10 python -m dnk_training.cli "$@" --artifacts "$ART" --preset "$PRESET" --threads 1; }
stem() { if [ "$2" = 0 ]; then echo "$1"; else echo "$1-s$2"; fi; }  # = distill_cli.run_name
export -f train stem
export ART PRESET STUDENT_SET

if has models && { [ ! -f "$ART/iql.json" ] || [ ! -f "$ART/teacher.json" ] || [ ! -f "$ART/classifier.json" ]; }; then
  TASK="$TASK" OUT="$ART" bash reports/teacher/train_small.sh
fi
if has pairs; then
  train gen-pairs --split heldout --resume --no-progress
  train gen-pairs --split train --resume --no-progress
  [ -f "$ART/pairs/spread.json" ] || train pair-spread --samples 256 --seeds 4
  mkdir -p "$OUT" && cp "$ART/pairs/spread.json" "$OUT/pair_spread.json"
fi

student_job() {  # model seed: train (resuming a checkpoint when there is one), then export
  local name; name=$(stem "$1" "$2")
  local extra=() kv
  compgen -G "$ART/runs/$name/checkpoints/ckpt_*.json" >/dev/null && extra=(--resume)
  for kv in $STUDENT_SET; do extra+=(--set "$kv"); done  # export and distill-report read it from the checkpoint
  # a training that failed or was stopped is not exported (xargs' `bash -c` does not inherit set -e)
  train train-student --model "$1" --train-seed "$2" --no-progress "${extra[@]}" > "$ART/train_$name.log" 2>&1 \
    || { echo "$name: training failed or stopped, not exported (rerun to resume): $ART/train_$name.log"; return 1; }
  train export --models "$1" --train-seed "$2" >> "$ART/train_$name.log" 2>&1
  tail -n 2 "$ART/train_$name.log" | head -n 1
}
export -f student_job
if has students; then
  # CD (a teacher ODE step per training step) first, so the cheap students fill the other core.
  : > /tmp/table1_jobs.$$
  [[ " ${MODELS[*]} " == *" cd "* ]] && for s in "${TRAIN_SEEDS[@]}"; do echo "cd $s"; done >> /tmp/table1_jobs.$$
  for s in "${TRAIN_SEEDS[@]}"; do for m in "${MODELS[@]}"; do [ "$m" = cd ] || echo "$m $s"; done; done >> /tmp/table1_jobs.$$
  xargs -P 2 -L 1 bash -c 'student_job "$0" "$1"' < /tmp/table1_jobs.$$
  rm -f /tmp/table1_jobs.$$
  [ -f "$ART/selectors/critic.onnx" ] || train export --models --selectors
fi
if has fidelity; then
  for s in "${TRAIN_SEEDS[@]}"; do
    train distill-report --models "${MODELS[@]}" --train-seed "$s" --out "$OUT/fidelity/seed$s" > /dev/null
  done
fi
if has floor; then
  R32="$ART/rank32"
  mkdir -p "$R32"
  for f in teacher classifier iql; do ln -sf "$(realpath "$ART/$f.json")" "$(realpath "$ART/$f.safetensors")" "$R32/"; done
  ln -sfn "$(realpath "$ART/pairs")" "$R32/pairs"
  resume=()
  compgen -G "$R32/runs/fdk/checkpoints/ckpt_*.json" >/dev/null && resume=(--resume)
  nice -n 10 python -m dnk_training.cli train-student --artifacts "$R32" --preset "$PRESET" --threads 1 --model fdk \
    --set fdk.rank=32 --no-progress "${resume[@]}" > "$R32/train.log" 2>&1
  python - "$ART/runs/fdk/scalars.csv" "$R32/runs/fdk/scalars.csv" "$OUT/lat_floor.json" <<'PY'
import json, sys
from dnk_training.logging_utils import read_scalars
out = {}
for label, path in (("rank_64_default", sys.argv[1]), ("rank_32_before", sys.argv[2])):
    s = read_scalars(path)
    tail = lambda k: sum(s[k][1][-10:]) / len(s[k][1][-10:])  # mean of the last 10 logged values
    out[label] = {"L_lat": tail("fdk/lat"), "lat_floor": tail("fdk/lat_floor"), "L_pred": tail("fdk/pred"),
                  "floor_share_of_L_lat": tail("fdk/lat_floor") / max(tail("fdk/lat"), 1e-12)}
open(sys.argv[3], "w").write(json.dumps(out, indent=1) + "\n")
print(json.dumps(out))
PY
fi

EVAL=(nice -n 10 python -m dnk_training.eval.cli d4rl --resume --env "$ENV_ID" --seeds 0 1 2 --max-steps 1000
      --num-candidates 64 --temperature 0.5 --threads 1 --provider cpu --candidate-states 4 --candidate-dataset "$DATA"
      --no-progress)
label() { case "$1" in fdk) echo "DNK$VARIANT (IQL)";; classifier) echo "DNK$VARIANT (classifier)";; kdm) echo "KDM$VARIANT";;
  kdmf) echo "KDM-F$VARIANT";; cd) echo "CD$VARIANT";; ct) echo "CT$VARIANT";; esac; }
eval_job() {  # kind model seed
  local res="$OUT/results"
  mkdir -p "$res"
  case "$1" in
    teacher) "${EVAL[@]}" --method Teacher --teacher "$ART" --seeds "$3" --episodes "$TEACHER_EPISODES" \
      --out "$res/teacher_seed$3.json";;  # one job per eval seed: the two cores share the slowest row
    classifier) local n; n=$(stem fdk "$3")
      "${EVAL[@]}" --method "$(label classifier)" --student "$ART/students/$n.onnx" --training-seed "$3" \
        --selector classifier --selector-model "$ART/selectors/classifier.onnx" --episodes "$TEACHER_EPISODES" \
        --out "$res/${n}_classifier.json";;
    student) local n; n=$(stem "$2" "$3")
      "${EVAL[@]}" --method "$(label "$2")" --student "$ART/students/$n.onnx" --training-seed "$3" \
        --selector critic --selector-model "$ART/selectors/critic.onnx" --episodes "$EPISODES" --out "$res/${n}_critic.json";;
  esac
}
export -f eval_job label
export EVAL_STR="${EVAL[*]}" OUT EPISODES TEACHER_EPISODES VARIANT
if has eval; then
  { [[ "$ROWS" == *" teacher "* ]] && for s in 0 1 2; do echo "teacher - $s"; done
    [[ "$ROWS" == *" classifier "* ]] && for s in "${TRAIN_SEEDS[@]}"; do echo "classifier fdk $s"; done
    [[ "$ROWS" == *" students "* ]] && for s in "${TRAIN_SEEDS[@]}"; do for m in "${MODELS[@]}"; do echo "student $m $s"; done; done
    true; } > /tmp/table1_eval.$$
  # bash -c cannot inherit an array: rebuild EVAL from its string form inside each job
  xargs -P 2 -L 1 bash -c 'read -r -a EVAL <<< "$EVAL_STR"; eval_job "$0" "$1" "$2"' < /tmp/table1_eval.$$
  rm -f /tmp/table1_eval.$$
fi
if has report; then
  beside=()
  [ -n "$BESIDE" ] && beside=("$BESIDE"/results/*.json)
  python -m dnk_training.eval.cli report "$OUT"/results/*.json "${beside[@]}" --out "$OUT" --reference "$(label fdk)"
  python reports/table1/fidelity_table.py "$OUT" > "$OUT/fidelity.md"
fi
echo "run_table1: done $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
