"""The planner core imports no ROS and no torch: it must run on any host with numpy + onnxruntime.

Each core module is imported in a fresh interpreter whose import system refuses rclpy, every ROS
message package and torch, so a stray import (direct or through another module) fails here
instead of on a robot image without torch or a laptop without ROS.
"""
from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import dnk_planner.core

FORBIDDEN = ("rclpy", "rcl_interfaces", "geometry_msgs", "sensor_msgs", "std_msgs", "trajectory_msgs",
             "visualization_msgs", "diagnostic_msgs", "lifecycle_msgs", "builtin_interfaces", "dnk_msgs", "torch")

BLOCKER = """
import importlib.abc, sys
FORBIDDEN = {forbidden!r}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in FORBIDDEN:
            raise ImportError(f"forbidden import in the planner core: {{name}}")
        return None
sys.meta_path.insert(0, Block())
import {module}
leaked = sorted(m for m in sys.modules if m.split(".")[0] in FORBIDDEN)
assert not leaked, leaked
"""

CORE_MODULES = ["dnk_planner.core"] + [
    f"dnk_planner.core.{m.name}" for m in pkgutil.iter_modules(dnk_planner.core.__path__)]


def import_isolated(module: str) -> subprocess.CompletedProcess:
    code = BLOCKER.format(forbidden=FORBIDDEN, module=module)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_core_has_its_modules() -> None:
    # The list is discovered; make sure discovery sees the whole core, not an empty folder.
    assert {"dnk_planner.core.planner", "dnk_planner.core.selectors", "dnk_planner.core.manifest"} <= set(CORE_MODULES)


@pytest.mark.parametrize("module", CORE_MODULES)
def test_core_module_imports_without_ros_or_torch(module: str) -> None:
    result = import_isolated(module)
    assert result.returncode == 0, f"{module} pulls in ROS or torch:\n{result.stderr[-2000:]}"


def test_blocker_catches_a_forbidden_import() -> None:
    # The check itself must be able to fail: a module that imports rclpy is refused.
    result = import_isolated("dnk_planner.ros.spin")
    assert result.returncode != 0 and "forbidden import in the planner core: rclpy" in result.stderr
