#!/usr/bin/env bash
# Runs every package's tests (after the idempotent set-up) and exits non-zero on any failure.
# Each run gets its own ROS_DOMAIN_ID so parallel runs on one machine do not see each other.
set -uo pipefail
# shellcheck source=scripts/prepare.sh
. "$(dirname "${BASH_SOURCE[0]}")/prepare.sh"

export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$(( ($$ + $(date +%s)) % 100 + 1 ))}"
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
echo "dnk test: ROS_DOMAIN_ID=$ROS_DOMAIN_ID"

echo "dnk test: hadolint docker/*.Dockerfile"
hadolint --config docker/hadolint.yaml docker/*.Dockerfile || { echo "dnk test: hadolint failed"; exit 1; }

python -m pytest -q "$@"
rc=$?
fastdds shm clean >/dev/null 2>&1 || true
[ $rc -eq 5 ] && { echo "dnk test: pytest collected no tests"; exit 1; }
exit $rc
