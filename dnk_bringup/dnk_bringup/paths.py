"""Where dnk_bringup's shipped files are: the installed share/ folder, or the source tree."""
from __future__ import annotations

from pathlib import Path

from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

SOURCE_DIR = Path(__file__).resolve().parent.parent


def _shared_file(folder: str, name: str) -> Path:
    """share/dnk_bringup/<folder>/<name> when installed, else the source tree's (run from a checkout).

    Raises ValueError naming both places when neither has the file.
    """
    try:
        path = Path(get_package_share_directory("dnk_bringup")) / folder / name
        if path.is_file():
            return path
    except PackageNotFoundError:
        path = None
    source = SOURCE_DIR / folder / name
    if source.is_file():
        return source
    raise ValueError(f"{folder} file '{name}' is neither installed ({path or 'dnk_bringup not in the ament index'}) "
                     f"nor in the source tree ({source}); build the workspace (colcon build) or pass the file's path")


def config_file(name: str) -> Path:
    """A shipped config (planner.yaml, sim_gen3.yaml, joint_limits.yaml)."""
    return _shared_file("config", name)


def model_file(name: str) -> Path:
    """A shipped model (.onnx; its .json manifest lies beside it): arm-student.onnx, arm-teacher.onnx."""
    return _shared_file("models", name)
