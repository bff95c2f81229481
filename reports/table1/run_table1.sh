#!/usr/bin/env bash
# Reduced-scale Table I on HalfCheetah (halfcheetah_medium_expert-dnk-v0, horizon 4).
# Every method runs through `dnk-eval d4rl` (students through dnk_planner.core.Planner, the teacher
# under its native protocol), sequentially, niced, single-threaded, on this machine.
#
#   bash reports/table1/run_table1.sh                # budget-driven episode length (see below)
#   STEPS=100 bash reports/table1/run_table1.sh      # force the common episode length
#
# Order (the teacher is the slow one, so it goes last and gets what time is left):
#   Part B: the 5 IQL-selected student rows at the full 1000 steps, 3 seeds x 5 episodes
#           -> reports/table1/students_1000steps/ ;
#   probe:  8 single-state teacher decisions -> STEPS = min(1000, teacher budget / (15 x decision time)),
#           rounded down to a multiple of 10; teacher budget = DEADLINE (epoch s) - now - REPORT_MARGIN_S,
#           or TEACHER_BUDGET_S when DEADLINE is unset;
#   Part A: all 7 methods, 3 seeds x 5 episodes x STEPS steps (the same setting for everyone)
#           -> reports/table1/results/ and reports/table1/table1.md.
# Seeds already in a results file are resumed, not rerun. PARTS (default "full probe students teacher
# report") picks steps, e.g. STEPS=100 PARTS=teacher starts the teacher before the students exist.
set -eo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
# shellcheck disable=SC1091
. scripts/env.sh  # (the colcon setup script it sources is not `set -u` clean)
set -u
export MPLBACKEND=Agg OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
ART="${ART:-artifacts/halfcheetah}"
DATA="${DATA:-halfcheetah_medium_expert-dnk-v0.hdf5}"
OUT="${OUT:-reports/table1}"
SEEDS=(0 1 2)
EPISODES=5
TEACHER_BUDGET_S="${TEACHER_BUDGET_S:-600}"
EVAL=(nice -n 10 python -m dnk_training.eval.cli)
COMMON=(--resume --env HalfCheetah-v5 --seeds "${SEEDS[@]}" --episodes "$EPISODES" --num-candidates 64
        --temperature 0.5 --threads 1 --provider cpu --candidate-states 4 --candidate-dataset "$DATA")

PARTS=" ${PARTS:-full probe students teacher report} "
has() { [[ "$PARTS" == *" $1 "* ]]; }
need() { [ -f "$1" ] || { echo "run_table1: missing $1 (produced by dnk-train / the distillation CLI)" >&2; exit 1; }; }
if has full || has students; then
  need "$ART/selectors/critic.onnx"; need "$ART/selectors/classifier.onnx"
  for s in fdk kdm kdmf cd ct; do need "$ART/students/$s.onnx"; done
fi

student() {  # label file selector results_dir steps
  "${EVAL[@]}" d4rl --method "$1" --student "$ART/students/$2.onnx" --selector "$3" \
    --selector-model "$ART/selectors/$3.onnx" "${COMMON[@]}" --max-steps "$5" --out "$4/$2_$3.json"
}
run_students() {  # results_dir steps [skip-classifier]
  student "DNK (IQL)" fdk critic "$1" "$2"
  [ "${3:-}" = skip-classifier ] || student "DNK (classifier)" fdk classifier "$1" "$2"
  student KDM kdm critic "$1" "$2"
  student KDM-F kdmf critic "$1" "$2"
  student CD cd critic "$1" "$2"
  student CT ct critic "$1" "$2"
}

# Part B: students at the full D4RL episode length.
if has full; then
  mkdir -p "$OUT/students_1000steps/results"
  # DNK (classifier) is left out at 1000 steps: its ONNX classifier selector (a half U-Net on 64
  # candidates) costs ~65 ms per decision here, 15 CPU-minutes for 15 episodes, over the budget.
  run_students "$OUT/students_1000steps/results" 1000 skip-classifier
  "${EVAL[@]}" report "$OUT"/students_1000steps/results/*.json --out "$OUT/students_1000steps"
fi
if has probe || has teacher; then need "$ART/teacher.json"; need "$ART/classifier.json"; fi
if [ -z "${STEPS:-}" ]; then
  has probe || { echo "run_table1: set STEPS or include 'probe' in PARTS" >&2; exit 1; }
  TEACHER_MS=$(nice -n 10 python - "$ART" <<'PY'
import sys, time, numpy as np
from dnk_training.eval.bridge import TeacherPolicy
p = TeacherPolicy(sys.argv[1], num_candidates=64, temperature=0.5, threads=1)
p.reset(0)
obs = np.zeros(17)
p.decide(obs)
t = []
for _ in range(8):
    t0 = time.perf_counter(); p.decide(obs); t.append(time.perf_counter() - t0)
print(f"{1e3 * float(np.median(t)):.1f}")
PY
)
  if [ -n "${DEADLINE:-}" ]; then TEACHER_BUDGET_S=$(( DEADLINE - $(date +%s) - ${REPORT_MARGIN_S:-120} )); fi
  STEPS=$(python -c "s=int($TEACHER_BUDGET_S*1000/(${#SEEDS[@]}*$EPISODES*$TEACHER_MS)); print(max(10, min(1000, s//10*10)))")
  echo "run_table1: teacher decision ~${TEACHER_MS} ms -> ${STEPS} steps per episode for every method"
fi
mkdir -p "$OUT/results"
has probe && printf '{"steps": %s, "teacher_decision_ms_probe": "%s", "teacher_budget_s": %s, "started": "%s", "load_avg": "%s"}\n' \
  "$STEPS" "${TEACHER_MS:-forced}" "$TEACHER_BUDGET_S" "$(date -u +%FT%TZ)" "$(cut -d' ' -f1-3 /proc/loadavg)" > "$OUT/run_settings.json"

# Part A: all methods, common length.
has students && run_students "$OUT/results" "$STEPS"
has teacher && "${EVAL[@]}" d4rl --method Teacher --teacher "$ART" "${COMMON[@]}" --max-steps "$STEPS" --out "$OUT/results/teacher.json"
has report && "${EVAL[@]}" report "$OUT"/results/*.json --out "$OUT"

echo "run_table1: done $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
