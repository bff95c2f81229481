"""The controller bridge without DDS: units and limits of what goes to ros2_kortex."""
from __future__ import annotations

import numpy as np

from dnk_planner.core.kinematics import HOME_POSITIONS, JOINT_VELOCITY_LIMITS, forward_kinematics, wrap_to_pi
from dnk_planner.ros.controller_bridge import ArmState, ControllerBridge, joint_step
from dnk_planner.ros.node_config import NodeConfig

Q = np.array(HOME_POSITIONS)


def arm(q: np.ndarray) -> ArmState:
    pose = forward_kinematics(q)
    return ArmState(q=q, ee_position=pose[:3, 3], ee_rotation=pose[:3, :3])


def twist_of(unit: str, q_next: np.ndarray):
    bridge = ControllerBridge(NodeConfig(model_path="m.onnx", controller_mode="twist", twist_angular_unit=unit,
                                         max_linear_accel=0.4, max_angular_accel=0.4))
    return bridge.command(q_next, arm(Q))


def test_angular_twist_is_sent_in_deg_per_s_for_the_real_driver() -> None:
    q_next = Q + np.r_[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.01]  # the wrist turns: an angular velocity
    deg, rad = twist_of("deg_per_s", q_next), twist_of("rad_per_s", q_next)
    w_deg = np.array([deg.angular.x, deg.angular.y, deg.angular.z])
    w_rad = np.array([rad.angular.x, rad.angular.y, rad.angular.z])
    assert np.linalg.norm(w_rad) > 1e-3
    np.testing.assert_allclose(w_deg, np.degrees(w_rad), rtol=1e-12)
    assert (deg.linear.x, deg.linear.y, deg.linear.z) == (rad.linear.x, rad.linear.y, rad.linear.z)  # m/s both
    assert NodeConfig.model_fields["twist_angular_unit"].default == "deg_per_s"  # kortex_driver's unit by default


def test_twist_follows_the_plan_velocity_in_the_tool_frame() -> None:
    cfg = NodeConfig(model_path="m.onnx", controller_mode="twist", twist_angular_unit="rad_per_s",
                     max_linear_accel=0.4)
    bridge = ControllerBridge(cfg)
    q_next = Q + np.r_[0.0, 0.004, 0.0, 0.0, 0.0, 0.0, 0.0]
    pose0, pose1 = forward_kinematics(Q), forward_kinematics(q_next)
    v_plan = (pose1[:3, 3] - pose0[:3, 3]) / cfg.period_s
    for _ in range(40):  # past the acceleration ramp (0.4 m/s^2) the plan's velocity is sent unchanged
        msg = bridge.command(q_next, arm(Q))
    v_tool = np.array([msg.linear.x, msg.linear.y, msg.linear.z])
    np.testing.assert_allclose(pose0[:3, :3] @ v_tool, v_plan, atol=1e-9)
    assert bridge.hold(None).linear.x == 0.0 and np.all(bridge._v_prev == 0.0)


def test_joint_step_unwraps_continuous_joints_and_respects_velocity_limits() -> None:
    measured = wrap_to_pi(Q)                              # joint_3 at 3.1416 is reported as about -3.14
    plan_next = Q + np.r_[0.0, 0.0, 0.02, 0.0, 0.0, 0.0, 0.0]  # the plan continues from the unwrapped value
    cmd = joint_step(plan_next, measured, 0.05)
    assert abs(cmd[2] - measured[2]) < 0.05, "no 2 pi swing towards the unwrapped plan"
    np.testing.assert_allclose(np.cos(cmd), np.cos(plan_next), atol=1e-12)
    fast = measured + np.r_[0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.1]
    cmd = joint_step(fast, measured, 0.05)
    step = np.abs(cmd - measured)
    assert np.all(step <= JOINT_VELOCITY_LIMITS * 0.05 + 1e-12) and step[0] > 0.06  # capped, direction kept
    np.testing.assert_allclose(step[6] / step[0], 0.1 / 0.5)
