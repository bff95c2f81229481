#!/usr/bin/env bash
# One idempotent set-up step: .venv with pinned ROS 2 Jazzy wheels + Python deps, the CMake
# path patch the wheels need, then `colcon build` of the workspace. A second run with nothing
# changed only compares two hashes and returns.
#
#   scripts/setup.sh            # runtime + training + dev deps, build everything
#   DNK_PROFILE=robot scripts/setup.sh   # runtime only, skips dnk_training (as on the robot)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
PROFILE="${DNK_PROFILE:-full}"
PY="${DNK_PYTHON:-python3}"

die() { echo "dnk setup: ERROR: $*" >&2; exit 1; }
say() { echo "dnk setup: $*"; }

# --- environment checks: fail early with the fix, not deep inside pip or cmake -------------
command -v "$PY" >/dev/null || die "'$PY' not found. Install CPython 3.11 or set DNK_PYTHON=/path/to/python3.11."
pyver="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
[ "$pyver" = "3.11" ] || die "Python $pyver found at $(command -v "$PY"); the ROS 2 Jazzy PyPI wheels are built for CPython 3.11 only. Install 3.11 (e.g. pyenv install 3.11) and rerun with DNK_PYTHON=/path/to/python3.11."
[ "$(uname -m)" = "x86_64" ] || die "architecture $(uname -m): the ROS 2 Jazzy wheels exist for x86_64 only. Use the docker/ images on ARM."
for tool in cc c++ cmake make; do
  command -v "$tool" >/dev/null || die "'$tool' not found: building dnk_msgs (rosidl C/C++ type support) needs a C/C++ toolchain and CMake >= 3.16. Debian/Ubuntu: apt-get install build-essential cmake"
done

case "$PROFILE" in
  full)  REQS=(requirements/ros.txt requirements/runtime.txt requirements/training.txt requirements/dev.txt) ;;
  robot) REQS=(requirements/ros.txt requirements/runtime.txt requirements/dev.txt) ;;
  *) die "DNK_PROFILE=$PROFILE is not one of: full, robot" ;;
esac

# ROS 2 launch tooling (launch, launch_ros, launch_testing, ros2cli) is not on the registries; the
# development machines and CI carry wheels of it in ../shared/ros2_tools (on a robot it comes
# from apt). When that folder is there, its wheels are installed and composition_interfaces is
# built into the workspace, so `ros2 launch` and the launch_testing tests work.
TOOLS="$(cd "$ROOT/.." && pwd)/shared/ros2_tools"
tools=()
if [ "$PROFILE" = full ] && [ -d "$TOOLS/wheels" ] && [ -d "$TOOLS/src" ]; then
  tools=("$TOOLS"/wheels/*.whl)
fi

# --- 1. virtual environment with pinned packages ---------------------------------------------
[ -x "$VENV/bin/python" ] || { say "creating $VENV"; "$PY" -m venv "$VENV"; }
req_hash="$( (cat "${REQS[@]}" scripts/patch_ros_cmake.py; for w in "${tools[@]}"; do basename "$w"; done) \
  | sha256sum | cut -c1-16)-$PROFILE"
if [ "$(cat "$VENV/.dnk_requirements" 2>/dev/null)" != "$req_hash" ]; then
  say "installing pinned packages (${REQS[*]})"
  args=()
  for r in "${REQS[@]}"; do args+=(-r "$r"); done
  # (grep drops this machine's pip-config noise about absent local index folders)
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q "${args[@]}" 2>&1 \
    | { grep -v "is ignored: it is neither a file nor a directory" || true; }
  [ "${PIPESTATUS[0]}" -eq 0 ] || die "pip install failed (see the pip output above). The pins live in requirements/*.txt."
  if [ "${#tools[@]}" -gt 0 ]; then
    say "installing the ROS 2 launch tooling from $TOOLS/wheels"
    # --no-deps: their metadata names ament_index_python and ros2cli, which no registry serves
    # (the ROS wheels and these wheels provide them); their PyPI needs are pinned in dev.txt.
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q --no-deps "${tools[@]}" 2>&1 \
      | { grep -v "is ignored: it is neither a file nor a directory" || true; }
    [ "${PIPESTATUS[0]}" -eq 0 ] || die "installing the launch tooling wheels from $TOOLS/wheels failed"
  fi
  "$VENV/bin/python" scripts/patch_ros_cmake.py "$VENV" || die "patching the ROS CMake export files failed"
  echo "$req_hash" > "$VENV/.dnk_requirements"
else
  say "packages up to date"
fi

# --- 2. colcon build (skipped when no source file changed) ----------------------------------
export VIRTUAL_ENV="$VENV" PATH="$VENV/bin:$PATH"
export AMENT_PREFIX_PATH="$VENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
skip=()
[ "$PROFILE" = robot ] && skip=(--packages-skip dnk_training)
bases=(--base-paths .)
[ "${#tools[@]}" -gt 0 ] && bases+=("$TOOLS/src")  # composition_interfaces, which launch_ros imports
src_hash="$( ( (git ls-files -co --exclude-standard -- 'dnk_*' colcon.meta 2>/dev/null || find dnk_* colcon.meta -type f); \
  if [ "${#tools[@]}" -gt 0 ]; then find "$TOOLS/src" -type f; fi ) \
  | LC_ALL=C sort | xargs -r sha256sum 2>/dev/null | sha256sum | cut -c1-16)-$req_hash"
if [ -f install/setup.bash ] && [ "$(cat install/.dnk_build 2>/dev/null)" = "$src_hash" ]; then
  say "workspace build up to date"
  exit 0
fi
say "colcon build (logs: $ROOT/log/latest_build)"
if ! colcon build --symlink-install "${bases[@]}" --event-handlers console_cohesion- summary+ status- "${skip[@]}" \
    --cmake-args -DBUILD_TESTING=OFF -DPython3_FIND_VIRTUALENV=ONLY > log_build.txt 2>&1; then
  failed="$(grep -oE 'Failed +<<< [a-z_]+' log_build.txt | awk '{print $3}' | sort -u | tr '\n' ' ')"
  tail -n 30 log_build.txt >&2
  logs=""
  for pkg in $failed; do logs+=" $ROOT/log/latest_build/$pkg/stdout_stderr.log"; done
  die "colcon build failed in package(s): ${failed:-unknown}. Log(s):${logs:- $ROOT/log/latest_build} (summary: $ROOT/log_build.txt)"
fi
rm -f log_build.txt
echo "$src_hash" > install/.dnk_build
say "done: source $ROOT/install/setup.bash (or use scripts/env.sh)"
