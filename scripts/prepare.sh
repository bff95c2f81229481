# Sourced by the entry-point scripts (demo.sh, test.sh, arm_model.sh): the idempotent set-up, then the
# venv and the workspace in the calling shell, from the repository root. Exits the caller on failure.
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
bash scripts/setup.sh || exit 1
# colcon's setup.bash reads unset variables: source it without -u.
set +u
# shellcheck disable=SC1091
. scripts/env.sh
set -u
