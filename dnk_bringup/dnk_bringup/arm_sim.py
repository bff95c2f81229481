"""The simulated Gen3's controllers (numpy, no ROS): the joint reference sim_gen3's MuJoCo servos track.

The latest command decides the mode, like switching ros2_kortex controllers: a joint
trajectory (interpolated, continuous joints the short way, followed with the joint
velocity/acceleration limits), a Cartesian twist (integrated through damped-least-squares IK,
clamped to the twist limits, no timeout unless configured) or a Cartesian pose target (approached
at <= max_pose_speed through IK). `q`, `qd` are the reference; the physics (dynamics, contacts)
is dnk_bringup.gen3_mujoco. Joints 2, 4, 6 stop at their position limits.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dnk_bringup.sim_gen3_config import SimGen3Config
from dnk_planner.core.geometry import quat_to_matrix
from dnk_planner.core.kinematics import (
    JOINT_LOWER, JOINT_UPPER, compile_kinematics, forward_kinematics, rotation_error, solve_ik, unwrap_near,
)

# DLS iterations per step (each step moves the end effector at most ~5 mm). Measured on a
# 2 s twist: 1 iteration drifts 2.4 mm sideways, 2 iterations 0.5 mm, 4 iterations < 0.1 mm at
# 1.7x the cost of 2. The tolerances are far below one step's motion, else slow final approaches
# would stall.
_IK_ITERATIONS = 2
_IK_POSITION_TOLERANCE_M = 1e-7
_IK_ROTATION_TOLERANCE_RAD = 1e-6


def rotation_from_vector(v: np.ndarray) -> np.ndarray:
    """Rotation matrix of an axis-angle vector (rad), via the quaternion."""
    angle = float(np.linalg.norm(v))
    if angle < 1e-12:
        return np.eye(3)
    axis = v / angle
    return quat_to_matrix(np.concatenate([axis * np.sin(angle / 2.0), [np.cos(angle / 2.0)]]))


def clamp_norm(v: np.ndarray, limit: float) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    return v * (limit / norm) if norm > limit else v


def _approach(error: np.ndarray, gain: float, max_speed: float, max_accel: float) -> np.ndarray:
    """Velocity along `error`: gain * |error|, at most max_speed and sqrt(2 max_accel |error|)."""
    dist = float(np.linalg.norm(error))
    if dist < 1e-12:
        return np.zeros_like(error)
    return error / dist * min(gain * dist, max_speed, np.sqrt(2.0 * max_accel * dist))


@dataclass(frozen=True)
class Trajectory:
    """Joint trajectory knots in absolute sim time: times (K,) ascending, positions (K, 7)."""

    times: np.ndarray
    positions: np.ndarray

    def reference(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Piecewise-linear position and its slope at time t (holds the last point after the end)."""
        times, pos = self.times, self.positions
        if t >= times[-1]:
            return pos[-1], np.zeros(pos.shape[1])
        k = max(int(np.searchsorted(times, t, side="right")), 1)
        slope = (pos[k] - pos[k - 1]) / (times[k] - times[k - 1])
        return pos[k - 1] + (t - times[k - 1]) * slope, slope


class ArmSim:
    """Joint state (q, qd) and the active command; `step(dt, t)` advances the arm."""

    def __init__(self, config: SimGen3Config, max_velocity: np.ndarray, max_acceleration: np.ndarray) -> None:
        compile_kinematics()  # the pose mode's IK: compiled now, not in the first 1 kHz step that needs it
        self.config = config
        self.v_max = np.asarray(max_velocity, dtype=float)
        self.a_max = np.asarray(max_acceleration, dtype=float)
        self.q = np.array(config.initial_positions, dtype=float)
        self.qd = np.zeros_like(self.q)
        self.mode = "hold"
        self._hold = self.q.copy()
        self._trajectory: Trajectory | None = None
        self._twist_cmd = np.zeros(6)       # commanded [v; w] in the base frame
        self._twist_now = np.zeros(6)       # rate-limited twist actually applied
        self._twist_stamp = 0.0
        self._pose_position = np.zeros(3)
        self._pose_rotation = np.eye(3)

    # --- commands --------------------------------------------------------------------------
    def set_trajectory(self, t_now: float, t_start: float, time_from_start: np.ndarray,
                       positions: np.ndarray) -> None:
        """Follow `positions` (K, 7), each reached at t_start + time_from_start (K,), from here.

        Like the joint_trajectory_controller: an empty trajectory stops the arm, a future start
        time holds the current position until then, points already in the past are skipped.
        """
        if len(time_from_start) == 0:
            self.hold()
            return
        times, pos = [t_now], [self.q.copy()]
        if t_start > t_now:
            times.append(t_start)
            pos.append(self.q.copy())
        for tk, qk in zip(t_start + np.asarray(time_from_start, dtype=float), positions):
            if tk > times[-1]:
                times.append(float(tk))
                # continuous joints take the short way, as the joint_trajectory_controller's angle wraparound does
                pos.append(unwrap_near(np.asarray(qk, dtype=float), pos[-1]))
        if len(times) == 1:  # every point is in the past: go to the last one
            times.append(t_now + 1e-9)
            pos.append(unwrap_near(np.asarray(positions[-1], dtype=float), self.q))
        self._trajectory = Trajectory(np.array(times), np.array(pos))
        self.mode = "trajectory"

    def set_twist(self, t_now: float, linear: np.ndarray, angular: np.ndarray) -> None:
        """Cartesian velocity command in the configured twist frame (tool or base)."""
        cfg = self.config
        linear = clamp_norm(np.asarray(linear, dtype=float), cfg.max_linear_speed)
        angular = clamp_norm(np.asarray(angular, dtype=float), cfg.max_angular_speed)
        if cfg.twist_frame == "tool":
            r = forward_kinematics(self.q)[:3, :3]
            linear, angular = r @ linear, r @ angular
        if self.mode not in ("twist", "pose"):
            self._twist_now = np.zeros(6)
        self._twist_cmd = np.concatenate([linear, angular])
        self._twist_stamp = t_now
        self.mode = "twist"

    def set_pose_target(self, position: np.ndarray, quat_xyzw: np.ndarray | None) -> None:
        """Move the end effector to `position` (m, base frame); orientation too unless None."""
        if self.mode not in ("twist", "pose"):
            self._twist_now = np.zeros(6)
        self._pose_position = np.asarray(position, dtype=float)
        self._pose_rotation = (forward_kinematics(self.q)[:3, :3] if quat_xyzw is None
                               else quat_to_matrix(np.asarray(quat_xyzw, dtype=float)))
        self.mode = "pose"

    def hold(self) -> None:
        self._hold = self.q.copy()
        self._trajectory = None
        self.mode = "hold"

    # --- integration -----------------------------------------------------------------------
    def step(self, dt: float, t_now: float) -> None:
        if dt <= 0.0:
            return
        if self.mode == "trajectory":
            q_ref, v_ff = self._trajectory.reference(t_now)
            v_des = v_ff + self._position_feedback(q_ref - self.q)
        elif self.mode == "twist":
            v_des = self._twist_velocity(dt, t_now)
        elif self.mode == "pose":
            v_des = self._pose_velocity(dt)
        else:
            v_des = self._position_feedback(self._hold - self.q)
        self._integrate(v_des, dt)

    def _position_feedback(self, error: np.ndarray) -> np.ndarray:
        """P term, capped so the arm can still brake within the acceleration limit (no overshoot)."""
        brake = np.sqrt(2.0 * self.a_max * np.abs(error))
        return np.clip(self.config.tracking_gain * error, -brake, brake)

    def _twist_velocity(self, dt: float, t_now: float) -> np.ndarray:
        cfg = self.config
        command = self._twist_cmd
        if cfg.twist_timeout_s > 0.0 and t_now - self._twist_stamp > cfg.twist_timeout_s:
            command = np.zeros(6)
        return self._cartesian_velocity(command, dt)

    def _pose_velocity(self, dt: float) -> np.ndarray:
        """A twist towards the target: proportional near it, capped by the speed limit and by
        what the Cartesian acceleration limit can still brake."""
        cfg = self.config
        pose = forward_kinematics(self.q)
        e_pos = self._pose_position - pose[:3, 3]
        e_rot = rotation_error(pose[:3, :3], self._pose_rotation)
        command = np.concatenate([
            _approach(e_pos, cfg.tracking_gain, cfg.max_pose_speed, cfg.max_linear_accel),
            _approach(e_rot, cfg.tracking_gain, cfg.max_angular_speed, cfg.max_angular_accel)])
        return self._cartesian_velocity(command, dt, pose)

    def _cartesian_velocity(self, command: np.ndarray, dt: float, pose: np.ndarray | None = None) -> np.ndarray:
        """Rate-limit the base-frame twist [v; w] and turn one step of it into joint velocities by IK."""
        cfg = self.config
        delta = command - self._twist_now
        self._twist_now = self._twist_now + np.concatenate([
            clamp_norm(delta[:3], cfg.max_linear_accel * dt), clamp_norm(delta[3:], cfg.max_angular_accel * dt)])
        pose = forward_kinematics(self.q) if pose is None else pose
        target_p = pose[:3, 3] + self._twist_now[:3] * dt
        target_r = rotation_from_vector(self._twist_now[3:] * dt) @ pose[:3, :3]
        return self._ik_velocity(target_p, target_r, dt)

    def _ik_velocity(self, target_p: np.ndarray, target_r: np.ndarray, dt: float) -> np.ndarray:
        q_next = solve_ik(target_p, self.q, target_r, max_iterations=_IK_ITERATIONS,
                          position_tolerance=_IK_POSITION_TOLERANCE_M,
                          rotation_tolerance=_IK_ROTATION_TOLERANCE_RAD).q
        return (q_next - self.q) / dt

    def _integrate(self, v_des: np.ndarray, dt: float) -> None:
        """Joint velocity limit, then acceleration limit, then the position limits. Both rate
        limits scale the whole vector, so a Cartesian motion keeps its direction."""
        v_des = v_des / max(1.0, float(np.max(np.abs(v_des) / self.v_max)))
        dv = v_des - self.qd
        self.qd = self.qd + dv / max(1.0, float(np.max(np.abs(dv) / (self.a_max * dt))))
        q = self.q + self.qd * dt
        clipped = np.clip(q, JOINT_LOWER, JOINT_UPPER)
        self.qd[clipped != q] = 0.0
        self.q = clipped
