# Source me: puts the venv and the built workspace on the environment (bash).
_dnk_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export VIRTUAL_ENV="$_dnk_root/.venv"
export PATH="$VIRTUAL_ENV/bin:$PATH"
export AMENT_PREFIX_PATH="$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
# shellcheck disable=SC1091
[ -f "$_dnk_root/install/setup.bash" ] && . "$_dnk_root/install/setup.bash"
unset _dnk_root
