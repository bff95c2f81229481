"""Signed distances from many points to spheres and oriented boxes, compiled.

The geometric selector evaluates 64 candidates x 32 steps x 27 link spheres against every
obstacle each control cycle. The distance of one point to one obstacle is written once
(`sphere_distance`, `box_distance`) and inlined by numba into every loop that needs it: the
point kernel here and the whole-arm kernel of `arm_geometry`, so the two cannot disagree.
Convention: negative inside, zero on the surface.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np

MAX_OBSTACLE_SIZE_M = 10.0
# ObstacleSet.kernel_arrays order: sphere centres (S, 3), radii (S,), box axes (3B, 3), offsets (3B,), half extents (3B,)
KERNEL_ARRAYS = ("centers", "radii", "axes", "offsets", "half")

# Fast-math without nnan/ninf: +inf (no obstacle, no cutoff) must stay exact.
FASTMATH = {"contract", "arcp", "reassoc", "nsz", "afn"}


def compiled(fn):
    """A loop kernel: nopython, cached on disk (compiled once per dtype, then loaded), no GIL."""
    return numba.njit(cache=True, nogil=True, fastmath=FASTMATH, boundscheck=False)(fn)


@numba.njit(inline="always", fastmath=FASTMATH)
def sphere_distance(x, y, z, centers, radii, k):  # noqa: ANN001, ANN201 (numba-typed)
    """Signed distance of point (x, y, z) to sphere k of `centers` (S, 3), `radii` (S,)."""
    dx, dy, dz = x - centers[k, 0], y - centers[k, 1], z - centers[k, 2]
    return np.sqrt(dx * dx + dy * dy + dz * dz) - radii[k]


@numba.njit(inline="always", fastmath=FASTMATH)
def box_distance(x, y, z, axes, offsets, half, b, nb):  # noqa: ANN001, ANN201 (numba-typed)
    """Signed distance of point (x, y, z) to box b of nb: `axes` (3 nb, 3) holds box axis k of box b
    in row k nb + b, `offsets` (3 nb,) the centre's coordinate along it, `half` (3 nb,) the half extent."""
    i, j, k = b, nb + b, 2 * nb + b
    ex = abs(axes[i, 0] * x + axes[i, 1] * y + axes[i, 2] * z - offsets[i]) - half[i]
    ey = abs(axes[j, 0] * x + axes[j, 1] * y + axes[j, 2] * z - offsets[j]) - half[j]
    ez = abs(axes[k, 0] * x + axes[k, 1] * y + axes[k, 2] * z - offsets[k]) - half[k]
    inside = max(ex, max(ey, ez))
    inside = inside if inside < 0.0 else 0.0
    ex = ex if ex > 0.0 else 0.0
    ey = ey if ey > 0.0 else 0.0
    ez = ez if ez > 0.0 else 0.0
    return np.sqrt(ex * ex + ey * ey + ez * ez) + inside


@compiled
def _distances(pt, centers, radii, axes, offsets, half, out):  # noqa: ANN001 (numba-typed)
    """out (M, P) = signed distance of each point pt (3, P) to each obstacle (spheres, then boxes)."""
    ns, nb = radii.shape[0], half.shape[0] // 3
    for k in range(ns):
        for p in range(pt.shape[1]):
            out[k, p] = sphere_distance(pt[0, p], pt[1, p], pt[2, p], centers, radii, k)
    for b in range(nb):
        for p in range(pt.shape[1]):
            out[ns + b, p] = box_distance(pt[0, p], pt[1, p], pt[2, p], axes, offsets, half, b, nb)


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrix (..., 3, 3) from quaternion(s) (..., 4) in xyzw order (normalized here)."""
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    x, y, z, w = np.moveaxis(q, -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def matrix_to_quat(r: np.ndarray) -> np.ndarray:
    """xyzw quaternion (w >= 0) of a single rotation matrix (Shepperd's method, robust near 180 deg)."""
    r = np.asarray(r, dtype=np.float64)
    tr = np.trace(r)
    if tr > max(r[0, 0], r[1, 1], r[2, 2]):
        s = 2.0 * np.sqrt(1.0 + tr)
        q = [(r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s, 0.25 * s]
    elif r[0, 0] >= r[1, 1] and r[0, 0] >= r[2, 2]:
        s = 2.0 * np.sqrt(1.0 + r[0, 0] - r[1, 1] - r[2, 2])
        q = [0.25 * s, (r[0, 1] + r[1, 0]) / s, (r[0, 2] + r[2, 0]) / s, (r[2, 1] - r[1, 2]) / s]
    elif r[1, 1] >= r[2, 2]:
        s = 2.0 * np.sqrt(1.0 + r[1, 1] - r[0, 0] - r[2, 2])
        q = [(r[0, 1] + r[1, 0]) / s, 0.25 * s, (r[1, 2] + r[2, 1]) / s, (r[0, 2] - r[2, 0]) / s]
    else:
        s = 2.0 * np.sqrt(1.0 + r[2, 2] - r[0, 0] - r[1, 1])
        q = [(r[0, 2] + r[2, 0]) / s, (r[1, 2] + r[2, 1]) / s, 0.25 * s, (r[1, 0] - r[0, 1]) / s]
    q = np.asarray(q)
    q /= np.linalg.norm(q)
    return -q if q[3] < 0 else q


def _validated(ids: Sequence[str], field: str, values: np.ndarray, low: float | None = None) -> None:
    for k, name in enumerate(ids):
        v = values[k]
        if not np.all(np.isfinite(v)):
            raise ValueError(f"obstacle {name!r}: {field} {np.asarray(v).tolist()} is not finite. Fix: check the perception source.")
        if low is not None and (np.any(v <= low) or np.any(v >= MAX_OBSTACLE_SIZE_M)):
            raise ValueError(
                f"obstacle {name!r}: {field} {np.asarray(v).tolist()} m must be in (0, {MAX_OBSTACLE_SIZE_M}). "
                f"Fix: send sizes in meters (full edge lengths for boxes, radius for spheres)."
            )


@dataclass(frozen=True, eq=False)  # arrays inside: compare by identity, not elementwise
class ObstacleSet:
    """Static obstacles in the planning frame as arrays, ready for broadcasting.

    Build with `from_shapes` (validates); fields: sphere_centers (S,3), sphere_radii (S,),
    box_centers (B,3), box_rotations (B,3,3) box->world, box_half_extents (B,3), ids.
    """

    sphere_ids: tuple[str, ...]
    sphere_centers: np.ndarray
    sphere_radii: np.ndarray
    box_ids: tuple[str, ...]
    box_centers: np.ndarray
    box_rotations: np.ndarray
    box_half_extents: np.ndarray

    @classmethod
    def empty(cls) -> ObstacleSet:
        return cls.from_shapes()

    @classmethod
    def from_shapes(
        cls,
        spheres: Sequence[tuple[str, Sequence[float], float]] = (),
        boxes: Sequence[tuple[str, Sequence[float], Sequence[float], Sequence[float]]] = (),
    ) -> ObstacleSet:
        """spheres: (id, center xyz m, radius m); boxes: (id, center xyz m, quaternion xyzw, full sizes xyz m).

        Raises ValueError naming the obstacle id and the field (finite, 0 < size < 10 m,
        quaternion normalizable, unique ids).
        """
        s_ids = tuple(str(s[0]) for s in spheres)
        b_ids = tuple(str(b[0]) for b in boxes)
        seen: set[str] = set()
        for name in s_ids + b_ids:
            if name in seen:
                raise ValueError(f"obstacle {name!r}: id is not unique. Fix: give every obstacle its own id.")
            seen.add(name)
        s_c = np.array([s[1] for s in spheres], dtype=np.float64).reshape(-1, 3)
        s_r = np.array([s[2] for s in spheres], dtype=np.float64).reshape(-1)
        b_c = np.array([b[1] for b in boxes], dtype=np.float64).reshape(-1, 3)
        b_q = np.array([b[2] for b in boxes], dtype=np.float64).reshape(-1, 4)
        b_s = np.array([b[3] for b in boxes], dtype=np.float64).reshape(-1, 3)
        _validated(s_ids, "center", s_c)
        _validated(s_ids, "radius", s_r, low=0.0)
        _validated(b_ids, "center", b_c)
        _validated(b_ids, "orientation", b_q)
        _validated(b_ids, "size", b_s, low=0.0)
        for name, q in zip(b_ids, b_q):
            if np.linalg.norm(q) < 1e-6:
                raise ValueError(
                    f"obstacle {name!r}: orientation quaternion {q.tolist()} has zero norm. "
                    f"Fix: send a unit quaternion (xyzw), e.g. [0, 0, 0, 1]."
                )
        rot = quat_to_matrix(b_q) if len(boxes) else np.zeros((0, 3, 3))
        return cls(s_ids, s_c, s_r, b_ids, b_c, rot, b_s / 2.0)

    def __post_init__(self) -> None:
        # The kernels' layout, in float64 and float32 (candidates arrive as float32; mixing dtypes
        # would upcast every point): box axis k of every box stacked as rows (k-major).
        r = self.box_rotations
        axes = np.concatenate([r[:, :, k] for k in range(3)], axis=0).reshape(-1, 3)
        consts = {
            "centers": self.sphere_centers.reshape(-1, 3), "radii": self.sphere_radii, "axes": axes,
            "offsets": (axes * np.tile(self.box_centers, (3, 1))).sum(axis=1),
            "half": self.box_half_extents.T.reshape(-1),
        }
        object.__setattr__(self, "_consts", {
            np.dtype(dt): tuple(np.ascontiguousarray(consts[k], dtype=dt) for k in KERNEL_ARRAYS)
            for dt in (np.float64, np.float32)
        })

    def kernel_arrays(self, dtype: np.dtype) -> tuple[np.ndarray, ...]:
        """The obstacles as the compiled kernels take them (`KERNEL_ARRAYS` order), in `dtype`."""
        return self._consts[np.dtype(dtype)]

    @property
    def ids(self) -> tuple[str, ...]:
        """Obstacle ids in the column order of `signed_distance` (spheres, then boxes)."""
        return self.sphere_ids + self.box_ids

    @property
    def is_empty(self) -> bool:
        return not self.ids

    def subset(self, keep: np.ndarray) -> ObstacleSet:
        """The obstacles at `ids` indices `keep` (a boolean mask or indices), in their original order."""
        mask = np.zeros(len(self), dtype=bool)
        mask[keep] = True
        s = len(self.sphere_ids)
        ms, mb = mask[:s], mask[s:]
        return ObstacleSet(tuple(np.array(self.sphere_ids, dtype=object)[ms]), self.sphere_centers[ms],
                           self.sphere_radii[ms], tuple(np.array(self.box_ids, dtype=object)[mb]),
                           self.box_centers[mb], self.box_rotations[mb], self.box_half_extents[mb])

    def nearest_order(self, points: np.ndarray) -> np.ndarray:
        """`ids` indices sorted by the distance to the closest of `points` (..., 3), nearest first;
        ties keep the earlier obstacle."""
        d = self.signed_distance(np.asarray(points, dtype=np.float64).reshape(-1, 3)).min(axis=0)
        return np.argsort(d, kind="stable")

    def nearest(self, points: np.ndarray, k: int) -> tuple[ObstacleSet, int]:
        """The `k` obstacles closest to any of `points` (..., 3) and how many were left out.

        Bounds the planner's per-decision cost (linear in the obstacle count) whatever a
        perception source sends.
        """
        if len(self) <= k:
            return self, 0
        return self.subset(self.nearest_order(points)[:k]), len(self) - k

    def __len__(self) -> int:
        return len(self.ids)

    def _rows(self, planes: np.ndarray) -> np.ndarray:
        """(M, P) signed distances for points given as planes (3, ...) (x, y, z), P = their count;
        float32 in, float32 math."""
        dt = np.float32 if planes.dtype == np.float32 else np.float64
        pt = np.ascontiguousarray(planes, dtype=dt).reshape(3, -1)                       # (3, P)
        out = np.empty((len(self), pt.shape[1]), dtype=dt)
        _distances(pt, *self.kernel_arrays(dt), out)
        return out

    def signed_distance(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) points -> (..., M) signed distance to each obstacle (m, negative inside)."""
        points = np.asarray(points)
        return self._rows(np.moveaxis(points, -1, 0)).T.reshape(points.shape[:-1] + (len(self),))

    def min_signed_distance(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) points -> (...) distance to the closest obstacle (+inf when there is none)."""
        return self.min_signed_distance_planes(np.moveaxis(np.asarray(points), -1, 0))

    def min_signed_distance_planes(self, planes: np.ndarray) -> np.ndarray:
        """Same for points as planes (3, ...): saves the transposing copy when the caller has them."""
        if self.is_empty:
            return np.full(planes.shape[1:], np.inf)
        return self._rows(planes).min(axis=0).reshape(planes.shape[1:])
