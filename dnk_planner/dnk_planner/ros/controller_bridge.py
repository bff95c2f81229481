"""Turns the planner's Cartesian target into what a ros2_kortex controller accepts.

Three modes (parameter `controller_mode`): `pose` publishes only the PoseStamped target
(for a Cartesian position controller), `twist` closes a P loop on the pose error into
geometry_msgs/Twist for ros2_kortex's twist_controller (tool frame, clamped to the Gen3
twist limits), `joint_trajectory` solves IK and sends a one-point JointTrajectory to the
joint_trajectory_controller (what ros2_kortex mock hardware accepts). The numpy parts are
free functions so they are tested without DDS.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import PoseStamped, Twist
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from dnk_planner.ros import topics
from dnk_planner.core.kinematics import inverse_kinematics, rotation_error
from dnk_planner.ros.node_config import NodeConfig



@dataclass
class ArmState:
    """What the bridge needs to know about the arm this cycle (base frame, SI units)."""

    q: np.ndarray             # (7,) joint positions, rad
    ee_position: np.ndarray   # (3,) m
    ee_rotation: np.ndarray   # (3, 3) end-effector orientation in the base frame


def clamp_twist(v_des: np.ndarray, v_prev: np.ndarray, max_speed: float, max_accel: float,
                dt: float) -> np.ndarray:
    """Limit a linear velocity's norm to max_speed and its change per step to max_accel*dt."""
    speed = float(np.linalg.norm(v_des))
    if speed > max_speed:
        v_des = v_des * (max_speed / speed)
    dv = v_des - v_prev
    step = float(np.linalg.norm(dv))
    max_step = max_accel * dt
    if step > max_step:
        dv = dv * (max_step / step)
    return v_prev + dv


class ControllerBridge:
    """Builds the command message of the configured mode; `hold` builds a stop command."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.mode = config.controller_mode
        self._v_prev = np.zeros(3)

    @property
    def topic(self) -> str | None:
        return {"pose": None, "twist": topics.TWIST, "joint_trajectory": topics.JOINT_TRAJECTORY}[self.mode]

    @property
    def msg_type(self) -> type | None:
        return {"pose": None, "twist": Twist, "joint_trajectory": JointTrajectory}[self.mode]

    def reset(self) -> None:
        self._v_prev = np.zeros(3)

    def command(self, target: np.ndarray, target_rotation: np.ndarray, state: ArmState):
        """Command towards the Cartesian target (base frame); None in pose mode."""
        if self.mode == "twist":
            return self._twist(target, target_rotation, state)
        if self.mode == "joint_trajectory":
            return self._joint_trajectory(target, target_rotation, state)
        return None

    def hold(self, state: ArmState):
        """Stop command: zero twist, or a trajectory that stays at the current joints."""
        if self.mode == "twist":
            self._v_prev = np.zeros(3)
            return Twist()
        if self.mode == "joint_trajectory":
            return self._trajectory_msg(state.q)
        return None

    def _twist(self, target: np.ndarray, target_rotation: np.ndarray, state: ArmState) -> Twist:
        cfg = self.config
        v_base = clamp_twist(cfg.twist_gain * (target - state.ee_position), self._v_prev,
                             cfg.max_linear_speed, cfg.max_linear_accel, cfg.period_s)
        self._v_prev = v_base
        w_base = cfg.twist_gain * rotation_error(state.ee_rotation, target_rotation)
        w_norm = float(np.linalg.norm(w_base))
        if w_norm > cfg.max_angular_speed:
            w_base *= cfg.max_angular_speed / w_norm
        # ros2_kortex's twist_controller takes the twist in the tool frame.
        v_tool = state.ee_rotation.T @ v_base
        w_tool = state.ee_rotation.T @ w_base
        msg = Twist()
        msg.linear.x, msg.linear.y, msg.linear.z = (float(v) for v in v_tool)
        msg.angular.x, msg.angular.y, msg.angular.z = (float(w) for w in w_tool)
        return msg

    def _joint_trajectory(self, target: np.ndarray, target_rotation: np.ndarray,
                          state: ArmState) -> JointTrajectory:
        q = inverse_kinematics(target, q0=state.q, target_rotation=target_rotation)
        return self._trajectory_msg(q)

    def _trajectory_msg(self, q: np.ndarray) -> JointTrajectory:
        msg = JointTrajectory()
        msg.joint_names = self.config.joint_names
        point = JointTrajectoryPoint()
        point.positions = [float(v) for v in q]
        period_ns = int(self.config.period_s * 1e9)
        point.time_from_start = Duration(sec=period_ns // 1_000_000_000, nanosec=period_ns % 1_000_000_000)
        msg.points = [point]
        return msg


def pose_stamped(position: np.ndarray, rotation_quat_xyzw: np.ndarray, frame: str, stamp) -> PoseStamped:
    """PoseStamped in `frame` from a position (m) and an xyzw quaternion."""
    msg = PoseStamped()
    msg.header.frame_id = frame
    msg.header.stamp = stamp
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in position)
    (msg.pose.orientation.x, msg.pose.orientation.y,
     msg.pose.orientation.z, msg.pose.orientation.w) = (float(v) for v in rotation_quat_xyzw)
    return msg
