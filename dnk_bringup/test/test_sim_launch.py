"""launch_testing: dnk_sim.launch.py brings up sim_gen3 + an active planner that reaches a goal.

Runs on a full ROS 2 install (`colcon test --packages-select dnk_bringup`); skipped where
launch_testing is missing (pip-installed ROS 2). The arm student is the analytic ONNX model
from dnk_planner.testing.models, written to a temporary directory.
"""
from __future__ import annotations

import tempfile
import time
import unittest
from pathlib import Path

import pytest

launch_testing = pytest.importorskip("launch_testing")

import launch  # noqa: E402
import launch_testing.actions  # noqa: E402
import launch_testing.asserts  # noqa: E402
import numpy as np  # noqa: E402
import rclpy  # noqa: E402
from ament_index_python.packages import get_package_share_directory  # noqa: E402
from geometry_msgs.msg import PoseStamped  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402
from lifecycle_msgs.msg import State  # noqa: E402
from lifecycle_msgs.srv import GetState  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402

from dnk_msgs.msg import PlannerStatus  # noqa: E402
from dnk_planner.testing.models import build_arm_primitive_model  # noqa: E402
from dnk_planner.core.geometry import matrix_to_quat  # noqa: E402
from dnk_planner.core.kinematics import forward_kinematics  # noqa: E402

GOAL_OFFSET = np.array([0.08, 0.12, -0.05])  # m, from the start pose of the simulated arm


@pytest.mark.launch_test
def generate_test_description():
    model = Path(tempfile.mkdtemp(prefix="dnk_sim_launch_")) / "arm.onnx"
    build_arm_primitive_model(model, horizon=32)
    sim_launch = Path(get_package_share_directory("dnk_bringup")) / "launch" / "dnk_sim.launch.py"
    return launch.LaunchDescription([
        launch.actions.IncludeLaunchDescription(
            PythonLaunchDescriptionSource(str(sim_launch)),
            launch_arguments={"model_path": str(model), "provider": "cpu"}.items()),  # default mode
        launch_testing.actions.ReadyToTest(),
    ])


class TestSimBringup(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        rclpy.init()
        cls.node = rclpy.create_node("dnk_sim_launch_test")

    @classmethod
    def tearDownClass(cls) -> None:
        cls.node.destroy_node()
        rclpy.shutdown()

    def spin_until(self, predicate, timeout_s: float) -> bool:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            rclpy.spin_once(self.node, timeout_sec=0.05)
            if predicate():
                return True
        return False

    def test_planner_active_and_goal_reached(self) -> None:
        states: list[JointState] = []
        statuses: list[PlannerStatus] = []
        self.node.create_subscription(JointState, "/joint_states", states.append, 10)
        self.node.create_subscription(PlannerStatus, "/dnk/status", statuses.append, 10)
        self.assertTrue(self.spin_until(lambda: len(states) >= 10, 30.0), "no /joint_states from sim_gen3")

        get_state = self.node.create_client(GetState, "/dnk_planner/get_state")
        self.assertTrue(get_state.wait_for_service(timeout_sec=30.0))
        active = {}

        def poll() -> bool:
            future = get_state.call_async(GetState.Request())
            rclpy.spin_until_future_complete(self.node, future, timeout_sec=2.0)
            active["id"] = future.result().current_state.id if future.result() else None
            return active["id"] == State.PRIMARY_STATE_ACTIVE

        self.assertTrue(self.spin_until(poll, 60.0), f"planner lifecycle state {active}")

        start = forward_kinematics(np.array(states[-1].position))
        goal = start[:3, 3] + GOAL_OFFSET
        msg = PoseStamped()
        msg.header.frame_id = "base_link"
        msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in goal)
        o = msg.pose.orientation  # keep the current end-effector orientation
        o.x, o.y, o.z, o.w = (float(v) for v in matrix_to_quat(start[:3, :3]))
        pub = self.node.create_publisher(PoseStamped, "/goal_pose", 10)
        self.assertTrue(self.spin_until(lambda: pub.get_subscription_count() > 0, 10.0))
        pub.publish(msg)
        self.assertTrue(self.spin_until(
            lambda: bool(statuses) and statuses[-1].state == PlannerStatus.GOAL_REACHED, 60.0),
            statuses[-1].message if statuses else "no /dnk/status")
        reached = forward_kinematics(np.array(states[-1].position))[:3, 3]
        self.assertLess(float(np.linalg.norm(reached - goal)), 0.02)


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):
    def test_processes_exit_cleanly(self, proc_info) -> None:
        launch_testing.asserts.assertExitCodes(proc_info, allowable_exit_codes=[0, -2])
