"""The launch files compile everywhere; where `launch` is importable they also load and
declare the arguments the README and docs promise (they cannot start here: no launch_ros)."""
from __future__ import annotations

import importlib.util
import py_compile
from pathlib import Path

import pytest

LAUNCH_DIR = Path(__file__).resolve().parents[1] / "launch"
LAUNCH_FILES = sorted(LAUNCH_DIR.glob("*.launch.py"))
EXPECTED_ARGS = {
    "dnk_gen3.launch.py": {"robot_ip", "use_fake_hardware", "robot_controller", "controller_mode", "model_path",
                           "policy", "params_file"},
    "dnk_sim.launch.py": {"sim_params_file", "record", "bag_output", "controller_mode", "model_path", "policy",
                          "params_file"},
    "dnk_replay.launch.py": {"bag", "rate", "topics", "controller_mode", "model_path", "policy", "params_file"},
}


def test_the_three_launch_files_exist() -> None:
    assert {p.name for p in LAUNCH_FILES} == set(EXPECTED_ARGS)


@pytest.mark.parametrize("path", LAUNCH_FILES + [LAUNCH_DIR.parent / "dnk_bringup" / "launch_common.py"],
                         ids=lambda p: p.name)
def test_compiles(path: Path, tmp_path: Path) -> None:
    py_compile.compile(str(path), cfile=str(tmp_path / "out.pyc"), doraise=True)


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_loads_and_declares_arguments(path: Path) -> None:
    pytest.importorskip("launch")
    pytest.importorskip("launch_ros")
    from launch.actions import DeclareLaunchArgument

    spec = importlib.util.spec_from_file_location(path.stem.replace(".", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    declared = {e.name for e in description.entities if isinstance(e, DeclareLaunchArgument)}
    assert EXPECTED_ARGS[path.name] <= declared
