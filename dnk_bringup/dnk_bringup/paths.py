"""Where dnk_bringup's shipped files are: the installed share/ folder, or the source tree."""
from __future__ import annotations

from pathlib import Path

from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

SOURCE_CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"


def config_file(name: str) -> Path:
    """share/dnk_bringup/config/<name> when installed, else the source tree's (run from a checkout).

    Raises ValueError naming both places when neither has the file.
    """
    try:
        path = Path(get_package_share_directory("dnk_bringup")) / "config" / name
        if path.is_file():
            return path
    except PackageNotFoundError:
        path = None
    source = SOURCE_CONFIG_DIR / name
    if source.is_file():
        return source
    raise ValueError(f"config file '{name}' is neither installed ({path or 'dnk_bringup not in the ament index'}) "
                     f"nor in the source tree ({source}); build the workspace (colcon build) or pass the file's path")
