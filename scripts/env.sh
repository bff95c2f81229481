# Source me: puts the venv and the built workspace on the environment (bash).
_dnk_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export VIRTUAL_ENV="$_dnk_root/.venv"
export PATH="$VIRTUAL_ENV/bin:$PATH"
export AMENT_PREFIX_PATH="$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
# shellcheck disable=SC1091
[ -f "$_dnk_root/install/setup.bash" ] && . "$_dnk_root/install/setup.bash"
# No `ros2 run` here: put the packages' executables (planner_node, sim_gen3, bag_record,
# bag_replay, dnk_demo, dnk-train, dnk-eval) on PATH instead.
for _dnk_pkg in dnk_planner dnk_bringup dnk_training; do
  [ -d "$_dnk_root/install/$_dnk_pkg/lib/$_dnk_pkg" ] && PATH="$_dnk_root/install/$_dnk_pkg/lib/$_dnk_pkg:$PATH"
done
export PATH
# Development machines and CI keep the project's datasets in ../shared/datasets: put that on the
# dataset search path unless the user chose one (dnk_training.datasets.find_dataset).
[ -z "${DNK_DATASETS:-}" ] && [ -d "$_dnk_root/../shared/datasets" ] && export DNK_DATASETS="$(cd "$_dnk_root/../shared/datasets" && pwd)"
unset _dnk_pkg
unset _dnk_root
