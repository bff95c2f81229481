"""The Gen3's whole-arm collision model: spheres fitted to Kinova's collision meshes, placed by FK.

Every link that moves with the joints (shoulder .. bracelet) carries the spheres of
`gen3_spheres` (each link's spheres contain all vertices of its collision mesh, so a sphere
clearance never over-states the mesh clearance). base_link is bolted to the table and cannot be
planned away, so it is not checked (as a MoveIt allowed-collision entry would exclude it).
Self-collision is not modelled.
"""
from __future__ import annotations

import numpy as np

from dnk_planner.core.gen3_spheres import LINK_NAMES, SPHERES
from dnk_planner.core.geometry import ObstacleSet

_TABLE = np.array([s for s in SPHERES if s[0] != 0], dtype=np.float64)
SPHERE_LINKS = _TABLE[:, 0].astype(int)            # (S,) index into kinematics.link_frames
SPHERE_CENTERS = _TABLE[:, 1:4]                    # (S, 3) m, in the link frame
SPHERE_RADII = _TABLE[:, 4]                        # (S,) m
SPHERE_LINK_NAMES = tuple(LINK_NAMES[i] for i in SPHERE_LINKS)


def collision_spheres(frames: np.ndarray) -> np.ndarray:
    """World centres (..., S, 3) of the arm's collision spheres from `kinematics.link_frames` output."""
    f = frames[..., SPHERE_LINKS, :, :]                              # (..., S, 4, 4)
    return np.einsum("...ij,...j->...i", f[..., :3, :3], SPHERE_CENTERS) + f[..., :3, 3]


def _chain_constants(dtype: np.dtype) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[tuple[np.ndarray, np.ndarray]]]:
    from dnk_planner.core.kinematics import _T_EE, _T_JOINT

    # per joint: (A^T so that A^T @ columns gives the columns of R A, origin translation a)
    joints = [(np.ascontiguousarray(t[:3, :3].T, dtype=dtype), np.ascontiguousarray(t[:3, 3], dtype=dtype))
              for t in _T_JOINT]
    spheres = [(np.ascontiguousarray(SPHERE_CENTERS[SPHERE_LINKS == i], dtype=dtype), SPHERE_LINKS == i)
               for i in range(1, len(_T_JOINT) + 1)]
    ee = (np.ascontiguousarray(_T_EE[:3, :3].T, dtype=dtype), np.ascontiguousarray(_T_EE[:3, 3], dtype=dtype))
    return joints + [ee], spheres


_CONSTS = {np.dtype(dt): _chain_constants(np.dtype(dt)) for dt in (np.float32, np.float64)}


def arm_planes(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Collision-sphere centres as planes (3, S, P) and end-effector positions (3, P) for joint
    vectors q (..., 7), P = their count; float32 in, float32 math.

    The chain of `kinematics.link_frames`, written for many configurations at once: the running
    rotation is kept column-major as (3 columns, 3 rows, P), so each fixed joint origin is one
    (3, 3) @ (3, 3P) product over all P configurations, each joint rotation is elementwise on
    contiguous rows, and no (P, 4, 4) batch is ever formed (about 30x faster than `link_frames`
    for 64 x 32 configurations).
    """
    dt = np.float32 if q.dtype == np.float32 else np.float64
    joints, spheres = _CONSTS[np.dtype(dt)]
    qp = np.ascontiguousarray(np.asarray(q, dtype=dt).reshape(-1, 7).T)    # (7, P)
    p = qp.shape[1]
    cos, sin = np.cos(qp), np.sin(qp)
    cols = np.zeros((3, 3, p), dtype=dt)                                   # cols[c] = column c of R, (3, P)
    for c in range(3):
        cols[c, c] = 1.0
    pos = np.zeros((3, p), dtype=dt)
    centers = np.empty((3, len(SPHERE_LINKS), p), dtype=dt)
    for i in range(7):
        a_rot_t, a_pos = joints[i]
        flat = cols.reshape(3, 3 * p)
        pos += (a_pos @ flat).reshape(3, p)                                # t += R a
        cols = (a_rot_t @ flat).reshape(3, 3, p)                           # R A: column c = sum_k col_k A[k, c]
        c0 = cols[0] * cos[i] + cols[1] * sin[i]                           # R Rz(q)
        cols[1] *= cos[i]
        cols[1] -= cols[0] * sin[i]
        cols[0] = c0
        local, mask = spheres[i]
        if len(local):                                                     # R c + t for the link's spheres
            centers[:, mask] = (local @ cols.reshape(3, 3 * p)).reshape(-1, 3, p).transpose(1, 0, 2) + pos[:, None]
    ee = pos + (joints[7][1] @ cols.reshape(3, 3 * p)).reshape(3, p)
    return centers, ee


def arm_points(q: np.ndarray) -> np.ndarray:
    """World positions (S + 1, 3) of every collision-sphere centre and the end effector at one
    configuration q (7,): where "near the arm" is measured from."""
    centers, ee = arm_planes(np.asarray(q, dtype=np.float64).reshape(1, 7))
    return np.concatenate([centers.reshape(3, -1), ee], axis=1).T


def sphere_clearance(centers: np.ndarray, obstacles: ObstacleSet, cutoff: float | None = None) -> np.ndarray:
    """Whole-arm clearance (P,) from `arm_planes` sphere centres (3, S, P): the smallest signed
    distance from any link sphere's surface to any obstacle (m, negative = penetration, +inf
    without obstacles); in the centres' dtype.

    With `cutoff` the result is min(clearance, cutoff), and a broad phase skips the work that
    cannot change it: the gap between the box bounding each sphere's path over all P configurations and
    each obstacle's axis-aligned box is a lower bound on their distance, and only obstacles and spheres with a pair under
    the cutoff are computed exactly (callers that saturate the clearance anyway pass their
    saturation point; the exact values below it are unchanged).
    """
    if cutoff is None:
        d = obstacles.min_signed_distance_planes(centers)             # (S, P)
        d -= SPHERE_RADII.astype(d.dtype)[:, None]
        return d.min(axis=0)
    p = centers.shape[2]
    if obstacles.is_empty:
        return np.full(p, cutoff, dtype=centers.dtype)
    low, high = centers.min(axis=2).T, centers.max(axis=2).T            # (S, 3) path bounds per sphere
    o_low, o_high = obstacles.bounds                                    # (M, 3)
    gap = np.maximum(np.maximum(low[None] - o_high[:, None], o_low[:, None] - high[None]), 0.0)   # (M, S, 3)
    bound = np.sqrt(np.square(gap).sum(axis=2)) - SPHERE_RADII[None]
    near = bound < cutoff                                               # (M, S)
    keep_obstacles, keep_spheres = near.any(axis=1), near.any(axis=0)
    if not keep_obstacles.any():
        return np.full(p, cutoff, dtype=centers.dtype)
    subset = obstacles if keep_obstacles.all() else obstacles.subset(keep_obstacles)
    d = subset.min_signed_distance_planes(centers[:, keep_spheres])    # (S', P)
    d -= SPHERE_RADII[keep_spheres].astype(d.dtype)[:, None]
    out = d.min(axis=0)
    np.minimum(out, cutoff, out=out)
    return out


def arm_clearance(q: np.ndarray, obstacles: ObstacleSet) -> np.ndarray:
    """Whole-arm clearance (...) of joint vectors q (..., 7), m (see `sphere_clearance`)."""
    centers, _ = arm_planes(q)
    return sphere_clearance(centers, obstacles).reshape(np.shape(q)[:-1])
