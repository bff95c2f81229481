#!/usr/bin/env bash
# The main job: closed-loop demo (simulated Gen3 + DNK planner over DDS), after set-up.
set -euo pipefail
# shellcheck source=scripts/prepare.sh
. "$(dirname "${BASH_SOURCE[0]}")/prepare.sh"
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$(( ($$ + $(date +%s)) % 100 + 1 ))}"
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST PYTHONUNBUFFERED=1
python -m dnk_bringup.demo "$@"
