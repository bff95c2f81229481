#!/usr/bin/env bash
# The latent-norm study: the Koopman students (FDK, and KDM / KDM-F as the control) with every encoder
# output layer-normalized (latent_norm=true), trained on the same pairs, budget and training seeds as
# Table I's, evaluated in the same harness (run_table1.sh) with DNK's classifier row too, then bootstrapped
# against every Table I row and each other with the study's DNK (IQL) as the reference row.
#
#   bash reports/table1/run_latent_norm_study.sh                                        # HalfCheetah
#   TASK=walker2d TABLE=reports/table1/walker2d bash reports/table1/run_latent_norm_study.sh
#
# Needs Table I's models and pairs in artifacts/<task> and its results in $TABLE/results (run_table1.sh).
# Resumable like run_table1.sh; PARTS="eval report" re-evaluates trained study models.
set -eo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
TASK="${TASK:-halfcheetah}"
TABLE="${TABLE:-reports/table1}"
BASE="artifacts/$TASK"
ART="$BASE/latnorm"
OUT="$TABLE/study_latent_norm"
VARIANT=latent-norm  # rows "DNK latent-norm (IQL)", "KDM latent-norm", ...
MODELS="${MODELS:-fdk kdm kdmf}"
PARTS=" ${PARTS:-students fidelity eval report} "
mkdir -p "$ART"
for f in teacher.json teacher.safetensors classifier.json classifier.safetensors iql.json iql.safetensors pairs selectors; do
  [ -e "$BASE/$f" ] || { echo "run_latent_norm_study: $BASE/$f missing; run reports/table1/run_table1.sh first" >&2; exit 2; }
  ln -sfn "$(realpath "$BASE/$f")" "$ART/$f"  # Table I's teacher, selectors and pairs, shared
done
parts=""  # the study's parts of run_table1.sh: Table I's models, pairs and floor are shared, not redone
for p in students fidelity eval report; do [[ "$PARTS" == *" $p "* ]] && parts="$parts $p"; done
TASK="$TASK" ART="$ART" OUT="$OUT" MODELS="$MODELS" VARIANT="$VARIANT" ROWS="classifier students" BESIDE="$TABLE" \
  STUDENT_SET="$(for m in $MODELS; do printf '%s.latent_norm=true ' "$m"; done)" PARTS="$parts" \
  bash reports/table1/run_table1.sh
