"""Kinova Gen3 7-DoF kinematics: batched FK, geometric Jacobian, damped-least-squares IK.

Chain, joint limits and the fixed end-effector transform are taken from the
project's table ../shared/reference/kinova_gen3.md (ros2_kortex URDF
convention: each joint = origin xyz, origin rpy, then a rotation q about local z).
Arm plans are joint trajectories: this module places the arm for them (FK), solves the
goal configuration once per goal (IK), and holds the joint limits the plans must respect;
`arm_geometry.arm_planes` is the same chain, vectorized for whole candidate batches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# (origin xyz m, origin rpy rad) per joint, parent -> child; kinova_gen3.md "Kinematic chain".
_JOINT_ORIGINS: tuple[tuple[tuple[float, float, float], tuple[float, float, float]], ...] = (
    ((0.0, 0.0, 0.15643), (3.1416, 0.0, 0.0)),             # joint_1 base_link -> shoulder_link
    ((0.0, 0.005375, -0.12838), (1.5708, 0.0, 0.0)),       # joint_2 -> half_arm_1_link
    ((0.0, -0.21038, -0.006375), (-1.5708, 0.0, 0.0)),     # joint_3 -> half_arm_2_link
    ((0.0, 0.006375, -0.21038), (1.5708, 0.0, 0.0)),       # joint_4 -> forearm_link
    ((0.0, -0.20843, -0.006375), (-1.5708, 0.0, 0.0)),     # joint_5 -> spherical_wrist_1_link
    ((0.0, 0.00017505, -0.10593), (1.5708, 0.0, 0.0)),     # joint_6 -> spherical_wrist_2_link
    ((0.0, -0.10593, -0.00017505), (-1.5708, 0.0, 0.0)),   # joint_7 -> bracelet_link
)
# bracelet_link -> end_effector_link (fixed joint).
_EE_ORIGIN = ((0.0, 0.0, -0.061525), (3.14159265, 0.0, 0.0))

NUM_JOINTS = 7
JOINT_NAMES = tuple(f"joint_{i}" for i in range(1, NUM_JOINTS + 1))  # URDF names without ros2_kortex's prefix
# Position limits (rad); continuous joints 1, 3, 5, 7 are unbounded (kinova_gen3.md).
JOINT_LOWER = np.array([-np.inf, -2.24, -np.inf, -2.57, -np.inf, -2.09, -np.inf])
JOINT_UPPER = -JOINT_LOWER
CONTINUOUS = ~np.isfinite(JOINT_UPPER)
# Joint velocity limits (rad/s), URDF = MoveIt config (kinova_gen3.md): what ros2_kortex enforces.
JOINT_VELOCITY_LIMITS = np.array([1.3963, 1.3963, 1.3963, 1.3963, 1.2218, 1.2218, 1.2218])
# Point on the joint-1 axis at joint-2 height (0.15643 + 0.12838 m): the centre of the
# reachable sphere (reach about 0.9 m), independent of q1.
SHOULDER_POSITION = np.array([0.0, 0.0, 0.15643 + 0.12838])

# Kortex "Home" (0, 15, 180, 230, 0, 55, 90 deg: elbow bent, wrist down) joint_1..joint_7, rad:
# the simulator's start configuration and the arm of the node tests and benchmarks.
HOME_POSITIONS = (0.0, 0.2618, 3.1416, -2.2689, 0.0, 0.9599, 1.5708)


def wrap_to_pi(q: np.ndarray) -> np.ndarray:
    """Continuous joints wrapped to [-pi, pi) as kortex_driver reports them; the others unchanged."""
    q = np.asarray(q, dtype=np.float64)
    return np.where(CONTINUOUS, (q + np.pi) % (2.0 * np.pi) - np.pi, q)


def unwrap_near(q: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """`q` with each continuous joint moved by whole turns to lie within pi of `reference`, so a
    joint command never asks for a 2 pi swing between a wrapped measurement and an unwrapped plan."""
    q = np.asarray(q, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    return np.where(CONTINUOUS, ref + wrap_to_pi(q - ref), q)


def _origin_transform(xyz: tuple[float, float, float], rpy: tuple[float, float, float]) -> np.ndarray:
    """URDF origin: translation, then R = Rz(yaw) Ry(pitch) Rx(roll)."""
    r, p, y = rpy
    cr, sr, cp, sp, cy, sy = np.cos(r), np.sin(r), np.cos(p), np.sin(p), np.cos(y), np.sin(y)
    t = np.eye(4)
    t[:3, :3] = [
        [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
        [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
        [-sp, cp * sr, cp * cr],
    ]
    t[:3, 3] = xyz
    return t


_T_JOINT = np.stack([_origin_transform(*o) for o in _JOINT_ORIGINS])
_T_EE = _origin_transform(*_EE_ORIGIN)


def _check_q(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    if q.shape[-1:] != (NUM_JOINTS,):
        raise ValueError(f"joint vector has shape {q.shape}; expected (..., {NUM_JOINTS}) in rad, joint_1..joint_7")
    if not np.all(np.isfinite(q)):
        raise ValueError("joint vector contains NaN/inf. Fix: check /joint_states.")
    return q


def link_frames(q: np.ndarray) -> np.ndarray:
    """World poses (..., 9, 4, 4): base_link, the 7 joint child links, end_effector_link."""
    q = _check_q(q)
    batch = q.shape[:-1]
    frames = np.empty(batch + (NUM_JOINTS + 2, 4, 4))
    frames[..., 0, :, :] = np.eye(4)
    c, s = np.cos(q), np.sin(q)
    rz = np.zeros(batch + (NUM_JOINTS, 4, 4))
    rz[..., 0, 0], rz[..., 0, 1], rz[..., 1, 0], rz[..., 1, 1] = c, -s, s, c
    rz[..., 2, 2] = rz[..., 3, 3] = 1.0
    t = frames[..., 0, :, :]
    for i in range(NUM_JOINTS):
        t = t @ _T_JOINT[i] @ rz[..., i, :, :]
        frames[..., i + 1, :, :] = t
    frames[..., -1, :, :] = t @ _T_EE
    return frames


def forward_kinematics(q: np.ndarray) -> np.ndarray:
    """End-effector pose (..., 4, 4) in base_link for joint vector(s) (..., 7) in rad."""
    return link_frames(q)[..., -1, :, :]


def link_origins(q: np.ndarray) -> np.ndarray:
    """Origins (..., 9, 3) of base, the 7 joint child links and the end effector (m)."""
    return link_frames(q)[..., :3, 3]


def jacobian(frames: np.ndarray) -> np.ndarray:
    """Geometric Jacobian (..., 6, 7) [linear; angular] of the end effector from `link_frames`."""
    axes = frames[..., 1:NUM_JOINTS + 1, :3, 2]          # joint i rotates about its child frame's z
    origins = frames[..., 1:NUM_JOINTS + 1, :3, 3]
    ee = frames[..., -1:, :3, 3]
    lin = np.cross(axes, ee - origins)
    return np.concatenate([np.swapaxes(lin, -1, -2), np.swapaxes(axes, -1, -2)], axis=-2)


def rotation_error(r_current: np.ndarray, r_target: np.ndarray) -> np.ndarray:
    """Rotation vector (..., 3) of r_target r_current^T (world frame, rad)."""
    r = r_target @ np.swapaxes(r_current, -1, -2)
    v = 0.5 * np.stack([r[..., 2, 1] - r[..., 1, 2], r[..., 0, 2] - r[..., 2, 0], r[..., 1, 0] - r[..., 0, 1]], -1)
    sin = np.linalg.norm(v, axis=-1, keepdims=True)
    cos = 0.5 * (np.trace(r, axis1=-2, axis2=-1)[..., None] - 1.0)
    angle = np.arctan2(sin, cos)
    scale = np.where(sin > 1e-9, angle / np.maximum(sin, 1e-12), 1.0)
    return v * scale


@dataclass(frozen=True)
class IKResult:
    q: np.ndarray                 # (..., 7) rad
    converged: np.ndarray         # (...,) bool
    position_error: np.ndarray    # (...,) m
    rotation_error: np.ndarray    # (...,) rad (0 when no orientation was requested)
    iterations: int


def solve_ik(
    target_position: np.ndarray,
    q0: np.ndarray,
    target_rotation: np.ndarray | None = None,
    max_iterations: int = 200,
    position_tolerance: float = 1e-4,
    rotation_tolerance: float = 1e-3,
    damping: float = 0.05,
    rotation_weight: float = 0.3,
    max_step: float = 0.3,
) -> IKResult:
    """Damped least squares: dq = J^T (J J^T + damping^2 I)^-1 e, batched over targets.

    Joints 2, 4, 6 are clipped to their limits after each step; continuous joints are
    not wrapped so the solution stays near q0 (no 2 pi jumps in joint commands).
    rotation_weight (m/rad) trades orientation against position error; max_step (rad)
    caps each update so far targets do not make the iteration diverge.
    """
    q = np.clip(_check_q(q0).copy(), JOINT_LOWER, JOINT_UPPER)
    p_t = np.asarray(target_position, dtype=np.float64)
    if p_t.shape != q.shape[:-1] + (3,) or not np.all(np.isfinite(p_t)):
        raise ValueError(f"target_position shape {p_t.shape} must be {q.shape[:-1] + (3,)} and finite (m)")
    use_rot = target_rotation is not None
    rows = 6 if use_rot else 3
    eye = np.eye(rows)
    active = np.ones(q.shape[:-1], dtype=bool)
    it = 0
    for it in range(max_iterations + 1):
        frames = link_frames(q)
        e_pos = p_t - frames[..., -1, :3, 3]
        pos_err = np.linalg.norm(e_pos, axis=-1)
        if use_rot:
            e_rot = rotation_error(frames[..., -1, :3, :3], target_rotation)
            rot_err = np.linalg.norm(e_rot, axis=-1)
            err = np.concatenate([e_pos, rotation_weight * e_rot], axis=-1)
        else:
            rot_err = np.zeros_like(pos_err)
            err = e_pos
        active = (pos_err > position_tolerance) | (rot_err > rotation_tolerance)
        if not np.any(active) or it == max_iterations:
            break
        j = jacobian(frames)[..., :rows, :]
        if use_rot:
            j[..., 3:, :] *= rotation_weight
        jjt = j @ np.swapaxes(j, -1, -2) + damping**2 * eye
        dq = np.swapaxes(j, -1, -2) @ np.linalg.solve(jjt, err[..., None])
        dq = dq[..., 0]
        norm = np.linalg.norm(dq, axis=-1, keepdims=True)
        dq *= np.minimum(1.0, max_step / np.maximum(norm, 1e-12))
        q = np.clip(q + dq * active[..., None], JOINT_LOWER, JOINT_UPPER)
    return IKResult(q, ~active, pos_err, rot_err, it)


def inverse_kinematics(
    target_position: np.ndarray, q0: np.ndarray, target_rotation: np.ndarray | None = None, **kwargs
) -> np.ndarray:
    """Joint vector(s) reaching the target (best effort: see `solve_ik` for convergence info)."""
    return solve_ik(target_position, q0, target_rotation, **kwargs).q
