"""Helpers for dnk_bringup's real-DDS tests: polling, child processes, a spinning probe node."""
from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from dnk_planner.ros.client import BackgroundNode, ChildProcess, interrupt

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"


def wait_until(predicate: Callable[[], bool], timeout_s: float, period_s: float = 0.02) -> bool:
    """Poll `predicate` until it is true or `timeout_s` passed; returns its last value."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(period_s)
    return bool(predicate())


class Spawner:
    """Starts `python -m <module>` children with logs in tmp_path and kills them reliably."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.children: list[ChildProcess] = []

    def __call__(self, module: str, *args: str) -> ChildProcess:
        """`python -m module args...` (how the console scripts run without an install)."""
        return self.command([sys.executable, "-m", module, *args], module.rsplit(".", 1)[-1])

    def command(self, argv: list[str], name: str) -> ChildProcess:
        proc = ChildProcess(argv, log_path=self.log_dir / f"{name}_{len(self.children)}.log")
        self.children.append(proc)
        return proc

    @staticmethod
    def log(proc: ChildProcess) -> str:
        return proc.output()

    interrupt = staticmethod(interrupt)

    def close(self) -> None:
        """Interrupt every child still running (clean DDS exit, no stale shared memory)."""
        for proc in self.children:
            interrupt(proc, timeout=5.0)


class Probe(BackgroundNode):
    """A node in the test process, spun by a background thread."""

    def __init__(self, domain: int) -> None:
        super().__init__(f"dnk_test_probe_{os.getpid()}", domain_id=domain)


KORTEX_DESCRIPTION = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "kortex_gen3"


def start_sim_and_planner(spawn: Spawner, model: Path, mode: str,
                          sim_params: tuple[str, ...] = ()) -> tuple[ChildProcess, ChildProcess]:
    """sim_gen3 and planner_node (autostarted) with dnk_bringup's params files, as dnk_sim.launch.py does."""
    sim = spawn("dnk_bringup.sim_gen3", "--ros-args", "--params-file", str(CONFIG_DIR / "sim_gen3.yaml"),
                "-p", f"command_mode:={mode}", *(a for p in sim_params for a in ("-p", p)))
    planner = spawn("dnk_planner.ros.node", "--autostart", "--ros-args", "--params-file", str(CONFIG_DIR / "planner.yaml"),
                    "-p", f"model_path:={model}", "-p", f"controller_mode:={mode}", "-p", "provider:=cpu")
    return sim, planner


def goal_from(joint_state, offset) -> tuple:
    """PoseStamped goal at the arm's current end-effector pose + offset (m), same orientation."""
    import numpy as np
    from geometry_msgs.msg import PoseStamped

    from dnk_planner.core.geometry import matrix_to_quat
    from dnk_planner.core.kinematics import forward_kinematics

    start = forward_kinematics(np.array(joint_state.position))
    goal = start[:3, 3] + np.asarray(offset)
    msg = PoseStamped()
    msg.header.frame_id = "base_link"
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in goal)
    o = msg.pose.orientation
    o.x, o.y, o.z, o.w = (float(v) for v in matrix_to_quat(start[:3, :3]))
    return msg, goal
