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
from dnk_planner.core.geometry import ObstacleSet, box_distance, compiled, sphere_distance
from dnk_planner.core.kinematics import _T_EE, _T_JOINT, compile_kinematics, link_frames

_TABLE = np.array([s for s in SPHERES if s[0] != 0], dtype=np.float64)
SPHERE_LINKS = _TABLE[:, 0].astype(int)            # (S,) index into kinematics.link_frames
SPHERE_CENTERS = _TABLE[:, 1:4]                    # (S, 3) m, in the link frame
SPHERE_RADII = _TABLE[:, 4]                        # (S,) m
SPHERE_LINK_NAMES = tuple(LINK_NAMES[i] for i in SPHERE_LINKS)


def collision_spheres(frames: np.ndarray) -> np.ndarray:
    """World centres (..., S, 3) of the arm's collision spheres from `kinematics.link_frames` output."""
    f = frames[..., SPHERE_LINKS, :, :]                              # (..., S, 4, 4)
    return np.einsum("...ij,...j->...i", f[..., :3, :3], SPHERE_CENTERS) + f[..., :3, 3]


def _chain_constants(dtype: np.dtype) -> tuple[np.ndarray, ...]:
    """The chain and spheres as the kernel takes them, in `dtype`: per joint (and the fixed end-effector
    joint last) A^T of the origin rotation (8, 3, 3) and its translation (8, 3); sphere link index,
    centre in the link frame and radius."""
    t = np.concatenate([_T_JOINT, _T_EE[None]])
    return (np.ascontiguousarray(np.swapaxes(t[:, :3, :3], 1, 2), dtype=dtype),
            np.ascontiguousarray(t[:, :3, 3], dtype=dtype), SPHERE_LINKS.astype(np.int64),
            np.ascontiguousarray(SPHERE_CENTERS, dtype=dtype), np.ascontiguousarray(SPHERE_RADII, dtype=dtype))


_CONSTS = {np.dtype(dt): _chain_constants(np.dtype(dt)) for dt in (np.float32, np.float64)}
_NO_OBSTACLES = ObstacleSet.empty()  # built once: its kernel arrays take ~35 us to lay out


@compiled
def _sweep(qp, rot_t, trans, links, local, radii, o_centers, o_radii, axes, offsets, half, cutoff, clear, ee):  # noqa: ANN001
    """The chain of `kinematics.link_frames` for P configurations qp (7, P) at once, fused with the
    distance of every link sphere to every obstacle: clear (P,) = min(cutoff, smallest sphere-surface
    signed distance), ee (3, P) = end-effector position.

    Configurations are the innermost loop everywhere (contiguous, SIMD-vectorized); the running
    rotation is kept column-major as cols[c, r, p]; no (P, 4, 4) frame and no (S, P) distance table
    is ever stored.
    """
    p_count = qp.shape[1]
    cols = np.zeros((3, 3, p_count), dtype=qp.dtype)
    tmp = np.empty((3, 3, p_count), dtype=qp.dtype)
    pos = np.zeros((3, p_count), dtype=qp.dtype)
    cx, cy, cz = np.empty(p_count, qp.dtype), np.empty(p_count, qp.dtype), np.empty(p_count, qp.dtype)
    cos, sin = np.cos(qp), np.sin(qp)
    for p in range(p_count):
        cols[0, 0, p] = cols[1, 1, p] = cols[2, 2, p] = 1.0
        clear[p] = cutoff
    n_spheres, nb = o_radii.shape[0], half.shape[0] // 3
    for i in range(7):
        for r in range(3):                                                 # t += R a
            for p in range(p_count):
                pos[r, p] += cols[0, r, p] * trans[i, 0] + cols[1, r, p] * trans[i, 1] + cols[2, r, p] * trans[i, 2]
        for c in range(3):                                                 # R A: column c = sum_k col_k A[k, c]
            for r in range(3):
                for p in range(p_count):
                    tmp[c, r, p] = cols[0, r, p] * rot_t[i, c, 0] + cols[1, r, p] * rot_t[i, c, 1] \
                        + cols[2, r, p] * rot_t[i, c, 2]
        for r in range(3):                                                 # R Rz(q)
            for p in range(p_count):
                cols[0, r, p] = tmp[0, r, p] * cos[i, p] + tmp[1, r, p] * sin[i, p]
                cols[1, r, p] = tmp[1, r, p] * cos[i, p] - tmp[0, r, p] * sin[i, p]
                cols[2, r, p] = tmp[2, r, p]
        for s in range(links.shape[0]):                                    # the link's spheres: R c + t
            if links[s] != i + 1:
                continue
            for p in range(p_count):
                cx[p] = pos[0, p] + cols[0, 0, p] * local[s, 0] + cols[1, 0, p] * local[s, 1] + cols[2, 0, p] * local[s, 2]
                cy[p] = pos[1, p] + cols[0, 1, p] * local[s, 0] + cols[1, 1, p] * local[s, 1] + cols[2, 1, p] * local[s, 2]
                cz[p] = pos[2, p] + cols[0, 2, p] * local[s, 0] + cols[1, 2, p] * local[s, 1] + cols[2, 2, p] * local[s, 2]
            for k in range(n_spheres):
                for p in range(p_count):
                    d = sphere_distance(cx[p], cy[p], cz[p], o_centers, o_radii, k) - radii[s]
                    clear[p] = d if d < clear[p] else clear[p]
            for b in range(nb):
                for p in range(p_count):
                    d = box_distance(cx[p], cy[p], cz[p], axes, offsets, half, b, nb) - radii[s]
                    clear[p] = d if d < clear[p] else clear[p]
    for r in range(3):
        for p in range(p_count):
            ee[r, p] = pos[r, p] + cols[0, r, p] * trans[7, 0] + cols[1, r, p] * trans[7, 1] + cols[2, r, p] * trans[7, 2]


def arm_sweep(q: np.ndarray, obstacles: ObstacleSet | None = None,
              cutoff: float = np.inf) -> tuple[np.ndarray, np.ndarray]:
    """Whole-arm clearance q.shape[:-1] and end-effector positions as planes (3,) + q.shape[:-1] of
    joint vectors q (..., 7), m; float32 in, float32 math (else float64).

    Clearance = the smallest signed distance from any link sphere's surface to any obstacle
    (negative = penetration), min'd with `cutoff` (callers that saturate it pass their saturation
    point); `cutoff` (+inf by default) without obstacles.
    """
    dt = np.float32 if np.asarray(q).dtype == np.float32 else np.float64
    q = np.asarray(q, dtype=dt)
    if q.shape[-1:] != (7,):
        raise ValueError(f"joint vectors have shape {q.shape}; expected (..., 7) in rad, joint_1..joint_7")
    batch = q.shape[:-1]
    qp = np.ascontiguousarray(q.reshape(-1, 7).T)                               # (7, P)
    clear = np.empty(qp.shape[1], dtype=dt)
    ee = np.empty((3, qp.shape[1]), dtype=dt)
    obstacles = _NO_OBSTACLES if obstacles is None else obstacles
    _sweep(qp, *_CONSTS[np.dtype(dt)], *obstacles.kernel_arrays(dt), dt(cutoff), clear, ee)
    return clear.reshape(batch), ee.reshape((3,) + batch)


def compile_kernels() -> None:
    """Compile (or load from numba's on-disk cache) the whole-arm, point-distance and kinematics
    kernels now: a node calls it at configure, so no control cycle or goal pays the first-call
    compile (about 2 s per kernel and dtype; a cached load takes milliseconds)."""
    probe = ObstacleSet.from_shapes(spheres=[("probe", (1.0, 0.0, 0.0), 0.1)])
    for dt in (np.float32, np.float64):
        arm_sweep(np.zeros((1, 7), dtype=dt), probe)
        probe.min_signed_distance(np.zeros((1, 3), dtype=dt))
    compile_kinematics()


def arm_points(q: np.ndarray) -> np.ndarray:
    """World positions (S + 1, 3) of every collision-sphere centre and the end effector at one
    configuration q (7,): where "near the arm" is measured from."""
    frames = link_frames(np.asarray(q, dtype=np.float64).reshape(7))
    return np.concatenate([collision_spheres(frames), frames[-1:, :3, 3]])


def arm_clearance(q: np.ndarray, obstacles: ObstacleSet) -> np.ndarray:
    """Whole-arm clearance (...) of joint vectors q (..., 7), m (see `arm_sweep`)."""
    return arm_sweep(q, obstacles)[0]
