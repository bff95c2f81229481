#!/usr/bin/env bash
# The main job: closed-loop demo (simulated Gen3 + DNK planner over DDS), after set-up.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
# colcon's setup.bash reads unset variables: source it without -u.
set +u
# shellcheck disable=SC1091
. scripts/env.sh
set -u
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$(( ($$ + $(date +%s)) % 100 + 1 ))}"
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST PYTHONUNBUFFERED=1
python -m dnk_bringup.demo "$@"
