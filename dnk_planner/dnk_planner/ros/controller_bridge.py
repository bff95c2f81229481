"""Turns the planner's joint-space plan into what a ros2_kortex controller accepts.

Three modes (parameter `controller_mode`):
- `joint_trajectory`: a one-point JointTrajectory at the plan's next row to the
  joint_trajectory_controller (real arm and mock hardware); continuous joints unwrapped next to the
  measured (wrapped) position, every joint's step capped by its velocity limit. No IK: plans are
  joint plans.
- `twist`: the plan's end-effector velocity (next row minus the measured pose, per period) for
  ros2_kortex's twist_controller, in the tool frame, clamped to the Gen3 twist limits. Angular
  velocity goes out in deg/s by default: kortex_driver copies Twist.angular unconverted into the
  Kortex API, whose unit is deg/s. The real twist controller has no timeout, so `hold` is a
  zero twist and the node sends it on every stop path.
- `pose`: only the PoseStamped target (FK of the next row); nothing on a real Gen3 consumes it.
The numpy parts are free functions so they are tested without DDS.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import PoseStamped, Twist
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from dnk_planner.core.kinematics import JOINT_VELOCITY_LIMITS, forward_kinematics, rotation_error, unwrap_near
from dnk_planner.ros import topics
from dnk_planner.ros.node_config import NodeConfig

DEG_PER_RAD = 180.0 / np.pi


@dataclass
class ArmState:
    """What the bridge needs to know about the arm this cycle (base frame, SI units)."""

    q: np.ndarray             # (7,) measured joint positions, rad (continuous joints wrapped)
    ee_position: np.ndarray   # (3,) m
    ee_rotation: np.ndarray   # (3, 3) end-effector orientation in the base frame


def clamp_twist(v_des: np.ndarray, v_prev: np.ndarray, max_speed: float, max_accel: float,
                dt: float) -> np.ndarray:
    """Limit a velocity's norm to max_speed and its change per step to max_accel*dt."""
    speed = float(np.linalg.norm(v_des))
    if speed > max_speed:
        v_des = v_des * (max_speed / speed)
    dv = v_des - v_prev
    step = float(np.linalg.norm(dv))
    max_step = max_accel * dt
    if step > max_step:
        dv = dv * (max_step / step)
    return v_prev + dv


def joint_step(q_target: np.ndarray, q_measured: np.ndarray, period_s: float) -> np.ndarray:
    """The target unwrapped next to the measurement and scaled so no joint exceeds its velocity limit."""
    delta = unwrap_near(q_target, q_measured) - q_measured
    ratio = float(np.max(np.abs(delta) / (JOINT_VELOCITY_LIMITS * period_s)))
    return q_measured + delta / max(1.0, ratio)


class ControllerBridge:
    """Builds the command message of the configured mode; `hold` builds a stop command."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.mode = config.controller_mode
        self._v_prev = np.zeros(6)
        self._angular_scale = DEG_PER_RAD if config.twist_angular_unit == "deg_per_s" else 1.0

    @property
    def topic(self) -> str | None:
        return {"pose": None, "twist": topics.TWIST, "joint_trajectory": topics.JOINT_TRAJECTORY}[self.mode]

    @property
    def msg_type(self) -> type | None:
        return {"pose": None, "twist": Twist, "joint_trajectory": JointTrajectory}[self.mode]

    def reset(self) -> None:
        self._v_prev = np.zeros(6)

    def command(self, q_next: np.ndarray, state: ArmState):
        """Command towards the plan's next row q_next (rad); None in pose mode."""
        if self.mode == "twist":
            return self._twist(q_next, state)
        if self.mode == "joint_trajectory":
            return self._trajectory_msg(joint_step(q_next, state.q, self.config.period_s))
        return None

    def hold(self, state: ArmState | None):
        """Stop command: a zero twist, or a trajectory that stays at the measured joints (None before
        the first joint state in joint_trajectory mode: nothing safe to send)."""
        if self.mode == "twist":
            self._v_prev = np.zeros(6)
            return Twist()
        if self.mode == "joint_trajectory" and state is not None:
            return self._trajectory_msg(state.q)
        return None

    def _twist(self, q_next: np.ndarray, state: ArmState) -> Twist:
        cfg = self.config
        pose = forward_kinematics(q_next)
        v_plan = (pose[:3, 3] - state.ee_position) / cfg.period_s      # the plan's velocity over the next period
        w_plan = rotation_error(state.ee_rotation, pose[:3, :3]) / cfg.period_s
        v = clamp_twist(v_plan, self._v_prev[:3], cfg.max_linear_speed, cfg.max_linear_accel, cfg.period_s)
        w = clamp_twist(w_plan, self._v_prev[3:], cfg.max_angular_speed, cfg.max_angular_accel, cfg.period_s)
        self._v_prev = np.concatenate([v, w])
        # ros2_kortex's twist_controller takes the twist in the tool frame.
        v_tool = state.ee_rotation.T @ v
        w_tool = state.ee_rotation.T @ w * self._angular_scale
        msg = Twist()
        msg.linear.x, msg.linear.y, msg.linear.z = (float(x) for x in v_tool)
        msg.angular.x, msg.angular.y, msg.angular.z = (float(x) for x in w_tool)
        return msg

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
