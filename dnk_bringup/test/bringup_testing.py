"""Helpers for dnk_bringup's real-DDS tests: polling, child processes, a spinning probe node."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

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
        self.children: list[tuple[subprocess.Popen, Path]] = []

    def __call__(self, module: str, *args: str) -> subprocess.Popen:
        """`python -m module args...` (how the console scripts run without an install)."""
        return self.command([sys.executable, "-m", module, *args], module.rsplit(".", 1)[-1])

    def command(self, argv: list[str], name: str) -> subprocess.Popen:
        log = self.log_dir / f"{name}_{len(self.children)}.log"
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with open(log, "wb") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.children.append((proc, log))
        return proc

    def log(self, proc: subprocess.Popen) -> str:
        return next(path for p, path in self.children if p is proc).read_text(errors="replace")

    @staticmethod
    def interrupt(proc: subprocess.Popen, timeout_s: float = 10.0) -> int:
        """SIGINT like Ctrl-C, then SIGKILL if it does not exit in time; returns the exit code."""
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        return proc.returncode

    def close(self) -> None:
        """SIGINT every child still running (clean DDS exit, no stale shared memory), SIGKILL stragglers."""
        running = [proc for proc, _ in self.children if proc.poll() is None]
        for proc in running:
            proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 5.0
        for proc in running:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


class Probe:
    """A node in the test process, spun by a background thread."""

    def __init__(self, domain: int) -> None:
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain, signal_handler_options=SignalHandlerOptions.NO)
        self.node = Node(f"dnk_test_probe_{os.getpid()}", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while not self._stop.is_set():
            self.executor.spin_once(timeout_sec=0.05)

    def collect(self, msg_type: type, topic: str, qos: int = 100) -> list:
        """Subscribe and return the list the messages are appended to."""
        received: list = []
        self.node.create_subscription(msg_type, topic, received.append, qos)
        return received

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        self.executor.shutdown()
        self.node.destroy_node()
        self.context.try_shutdown()


def start_sim_and_planner(spawn: Spawner, model: Path, mode: str) -> tuple[subprocess.Popen, subprocess.Popen]:
    """sim_gen3 and planner_node (autostarted) with dnk_bringup's params files, as dnk_sim.launch.py does."""
    sim = spawn("dnk_bringup.sim_gen3", "--ros-args", "--params-file", str(CONFIG_DIR / "sim_gen3.yaml"),
                "-p", f"command_mode:={mode}")
    planner = spawn("dnk_planner.node", "--autostart", "--ros-args", "--params-file", str(CONFIG_DIR / "planner.yaml"),
                    "-p", f"model_path:={model}", "-p", f"controller_mode:={mode}", "-p", "provider:=cpu")
    return sim, planner


def goal_from(joint_state, offset) -> tuple:
    """PoseStamped goal at the arm's current end-effector pose + offset (m), same orientation."""
    import numpy as np
    from geometry_msgs.msg import PoseStamped

    from dnk_planner.geometry import matrix_to_quat
    from dnk_planner.kinematics import forward_kinematics

    start = forward_kinematics(np.array(joint_state.position))
    goal = start[:3, 3] + np.asarray(offset)
    msg = PoseStamped()
    msg.header.frame_id = "base_link"
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in goal)
    o = msg.pose.orientation
    o.x, o.y, o.z, o.w = (float(v) for v in matrix_to_quat(start[:3, :3]))
    return msg, goal
