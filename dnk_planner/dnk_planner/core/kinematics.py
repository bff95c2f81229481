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

import numba
import numpy as np

from dnk_planner.core.geometry import FASTMATH, compiled

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


@numba.njit(inline="always", fastmath=FASTMATH)
def _frames_into(q, t_joint, t_ee, out):  # noqa: ANN001 (numba-typed)
    """out (9, 4, 4) = world poses of base_link, the 7 joint child links and end_effector_link at q (7,):
    T_i = T_(i-1) @ origin_i @ Rz(q_i)."""
    for r in range(4):
        for c in range(4):
            out[0, r, c] = 1.0 if r == c else 0.0
    for i in range(7):
        cq, sq = np.cos(q[i]), np.sin(q[i])
        for r in range(4):
            m0 = m1 = m2 = m3 = 0.0
            for k in range(4):
                v = out[i, r, k]
                m0 += v * t_joint[i, k, 0]
                m1 += v * t_joint[i, k, 1]
                m2 += v * t_joint[i, k, 2]
                m3 += v * t_joint[i, k, 3]
            out[i + 1, r, 0] = m0 * cq + m1 * sq
            out[i + 1, r, 1] = m1 * cq - m0 * sq
            out[i + 1, r, 2] = m2
            out[i + 1, r, 3] = m3
    for r in range(4):
        for c in range(4):
            out[8, r, c] = out[7, r, 0] * t_ee[0, c] + out[7, r, 1] * t_ee[1, c] + out[7, r, 2] * t_ee[2, c] \
                + out[7, r, 3] * t_ee[3, c]


@numba.njit(inline="always", fastmath=FASTMATH)
def _jacobian_into(frames, out, rotation_weight):  # noqa: ANN001 (numba-typed)
    """out (6, 7) = [linear; rotation_weight * angular] geometric Jacobian of the end effector: joint i
    rotates about its child frame's z axis."""
    for j in range(7):
        z0, z1, z2 = frames[j + 1, 0, 2], frames[j + 1, 1, 2], frames[j + 1, 2, 2]
        d0, d1, d2 = frames[8, 0, 3] - frames[j + 1, 0, 3], frames[8, 1, 3] - frames[j + 1, 1, 3], \
            frames[8, 2, 3] - frames[j + 1, 2, 3]
        out[0, j], out[1, j], out[2, j] = z1 * d2 - z2 * d1, z2 * d0 - z0 * d2, z0 * d1 - z1 * d0
        out[3, j], out[4, j], out[5, j] = rotation_weight * z0, rotation_weight * z1, rotation_weight * z2


@numba.njit(inline="always", fastmath=FASTMATH)
def _rotation_error_into(rc, rt, out):  # noqa: ANN001 (numba-typed)
    """out (3,) = rotation vector of rt rc^T (world frame, rad), for 3 x 3 (or larger, top-left) rc, rt."""
    r = np.empty((3, 3))
    for i in range(3):
        for j in range(3):
            r[i, j] = rt[i, 0] * rc[j, 0] + rt[i, 1] * rc[j, 1] + rt[i, 2] * rc[j, 2]
    v0, v1, v2 = 0.5 * (r[2, 1] - r[1, 2]), 0.5 * (r[0, 2] - r[2, 0]), 0.5 * (r[1, 0] - r[0, 1])
    sin = np.sqrt(v0 * v0 + v1 * v1 + v2 * v2)
    angle = np.arctan2(sin, 0.5 * (r[0, 0] + r[1, 1] + r[2, 2] - 1.0))
    scale = angle / sin if sin > 1e-9 else 1.0
    out[0], out[1], out[2] = v0 * scale, v1 * scale, v2 * scale


@compiled
def _link_frames(q, t_joint, t_ee, out):  # noqa: ANN001 (numba-typed)
    for p in range(q.shape[0]):
        _frames_into(q[p], t_joint, t_ee, out[p])


@compiled
def _jacobians(frames, out):  # noqa: ANN001 (numba-typed)
    for p in range(frames.shape[0]):
        _jacobian_into(frames[p], out[p], 1.0)


@compiled
def _rotation_errors(rc, rt, out):  # noqa: ANN001 (numba-typed)
    for p in range(rc.shape[0]):
        _rotation_error_into(rc[p], rt[p], out[p])


def link_frames(q: np.ndarray) -> np.ndarray:
    """World poses (..., 9, 4, 4): base_link, the 7 joint child links, end_effector_link."""
    q = _check_q(q)
    flat = np.ascontiguousarray(q.reshape(-1, NUM_JOINTS))
    out = np.empty((len(flat), NUM_JOINTS + 2, 4, 4))
    _link_frames(flat, _T_JOINT, _T_EE, out)
    return out.reshape(q.shape[:-1] + (NUM_JOINTS + 2, 4, 4))


def forward_kinematics(q: np.ndarray) -> np.ndarray:
    """End-effector pose (..., 4, 4) in base_link for joint vector(s) (..., 7) in rad."""
    return link_frames(q)[..., -1, :, :]


def link_origins(q: np.ndarray) -> np.ndarray:
    """Origins (..., 9, 3) of base, the 7 joint child links and the end effector (m)."""
    return link_frames(q)[..., :3, 3]


def jacobian(frames: np.ndarray) -> np.ndarray:
    """Geometric Jacobian (..., 6, 7) [linear; angular] of the end effector from `link_frames`."""
    frames = np.asarray(frames, dtype=np.float64)
    flat = np.ascontiguousarray(frames.reshape(-1, NUM_JOINTS + 2, 4, 4))
    out = np.empty((len(flat), 6, NUM_JOINTS))
    _jacobians(flat, out)
    return out.reshape(frames.shape[:-3] + (6, NUM_JOINTS))


def rotation_error(r_current: np.ndarray, r_target: np.ndarray) -> np.ndarray:
    """Rotation vector (..., 3) of r_target r_current^T (world frame, rad)."""
    rc, rt = np.broadcast_arrays(np.asarray(r_current, dtype=np.float64), np.asarray(r_target, dtype=np.float64))
    flat_c, flat_t = np.ascontiguousarray(rc.reshape(-1, 3, 3)), np.ascontiguousarray(rt.reshape(-1, 3, 3))
    out = np.empty((len(flat_c), 3))
    _rotation_errors(flat_c, flat_t, out)
    return out.reshape(rc.shape[:-2] + (3,))


@numba.njit(inline="always", fastmath=FASTMATH)
def _solve_spd_into(a, b, n, out):  # noqa: ANN001 (numba-typed)
    """out[:n] = a[:n, :n]^-1 b[:n] by Cholesky (a symmetric positive definite; a is overwritten)."""
    for j in range(n):
        d = a[j, j]
        for k in range(j):
            d -= a[j, k] * a[j, k]
        a[j, j] = np.sqrt(d)
        for i in range(j + 1, n):
            v = a[i, j]
            for k in range(j):
                v -= a[i, k] * a[j, k]
            a[i, j] = v / a[j, j]
    for i in range(n):                                      # L y = b
        v = b[i]
        for k in range(i):
            v -= a[i, k] * out[k]
        out[i] = v / a[i, i]
    for i in range(n - 1, -1, -1):                          # L^T x = y
        v = out[i]
        for k in range(i + 1, n):
            v -= a[k, i] * out[k]
        out[i] = v / a[i, i]


@compiled
def _damped_least_squares(q, target_p, target_r, use_rot, lower, upper, t_joint, t_ee, max_iterations,  # noqa: ANN001
                          position_tolerance, rotation_tolerance, damping, rotation_weight, max_step,
                          converged, position_error, rotation_err, iterations):
    """`solve_ik` for each of the P rows of q (P, 7) in place, one target after another."""
    rows = 6 if use_rot else 3
    frames = np.empty((9, 4, 4))
    jac = np.empty((6, 7))
    a = np.empty((6, 6))
    err = np.zeros(6)
    e_rot = np.zeros(3)
    y = np.empty(6)
    dq = np.empty(7)
    for p in range(q.shape[0]):
        active = True
        pe = re = 0.0
        it = 0
        for it in range(max_iterations + 1):
            _frames_into(q[p], t_joint, t_ee, frames)
            for k in range(3):
                err[k] = target_p[p, k] - frames[8, k, 3]
            pe = np.sqrt(err[0] * err[0] + err[1] * err[1] + err[2] * err[2])
            if use_rot:
                _rotation_error_into(frames[8], target_r[p], e_rot)
                re = np.sqrt(e_rot[0] * e_rot[0] + e_rot[1] * e_rot[1] + e_rot[2] * e_rot[2])
                for k in range(3):
                    err[3 + k] = rotation_weight * e_rot[k]
            active = pe > position_tolerance or re > rotation_tolerance
            if not active or it == max_iterations:
                break
            _jacobian_into(frames, jac, rotation_weight)
            for i in range(rows):                            # J J^T + damping^2 I
                for j in range(rows):
                    v = 0.0
                    for k in range(7):
                        v += jac[i, k] * jac[j, k]
                    a[i, j] = v + (damping * damping if i == j else 0.0)
            _solve_spd_into(a, err, rows, y)
            norm = 0.0
            for k in range(7):                               # dq = J^T y
                v = 0.0
                for i in range(rows):
                    v += jac[i, k] * y[i]
                dq[k] = v
                norm += v * v
            scale = min(1.0, max_step / max(np.sqrt(norm), 1e-12))
            for k in range(7):
                q[p, k] = min(max(q[p, k] + dq[k] * scale, lower[k]), upper[k])
        converged[p], position_error[p], rotation_err[p], iterations[p] = not active, pe, re, it


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
    q = np.clip(_check_q(q0), JOINT_LOWER, JOINT_UPPER)
    p_t = np.asarray(target_position, dtype=np.float64)
    if p_t.shape != q.shape[:-1] + (3,) or not np.all(np.isfinite(p_t)):
        raise ValueError(f"target_position shape {p_t.shape} must be {q.shape[:-1] + (3,)} and finite (m)")
    use_rot = target_rotation is not None
    batch = q.shape[:-1]
    flat = np.ascontiguousarray(q.reshape(-1, NUM_JOINTS))
    r_t = np.ascontiguousarray(np.broadcast_to(target_rotation, batch + (3, 3)).reshape(-1, 3, 3), dtype=np.float64) \
        if use_rot else np.zeros((len(flat), 3, 3))
    converged, iterations = np.empty(len(flat), dtype=np.bool_), np.empty(len(flat), dtype=np.int64)
    pos_err, rot_err = np.empty(len(flat)), np.empty(len(flat))
    _damped_least_squares(flat, np.ascontiguousarray(p_t.reshape(-1, 3)), r_t, use_rot, JOINT_LOWER, JOINT_UPPER,
                          _T_JOINT, _T_EE, max_iterations, position_tolerance, rotation_tolerance, damping,
                          rotation_weight, max_step, converged, pos_err, rot_err, iterations)
    return IKResult(flat.reshape(q.shape), converged.reshape(batch), pos_err.reshape(batch), rot_err.reshape(batch),
                    int(iterations.max(initial=0)))


def inverse_kinematics(
    target_position: np.ndarray, q0: np.ndarray, target_rotation: np.ndarray | None = None, **kwargs
) -> np.ndarray:
    """Joint vector(s) reaching the target (best effort: see `solve_ik` for convergence info)."""
    return solve_ik(target_position, q0, target_rotation, **kwargs).q


def compile_kinematics() -> None:
    """Compile (or load from numba's on-disk cache) the FK, Jacobian, rotation-error and IK kernels
    now, so no goal or control step pays the first-call compile."""
    frames = link_frames(np.zeros(NUM_JOINTS))
    jacobian(frames)
    rotation_error(frames[-1, :3, :3], frames[-1, :3, :3])
    solve_ik(frames[-1, :3, 3], np.zeros(NUM_JOINTS), frames[-1, :3, :3], max_iterations=1)
