"""Vectorized signed distances from many points to spheres and oriented boxes.

The geometric selector evaluates 64 candidates x 32 steps against every obstacle
each control cycle, so distances are computed for all points at once (no Python
loop over points or candidates). Convention: negative inside, zero on the surface.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MAX_OBSTACLE_SIZE_M = 10.0


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
        # Precomputed layouts for the plane-wise kernel, in float64 and float32 (candidates
        # arrive as float32; mixing dtypes would upcast every plane). Box axis k of every box
        # is stacked as rows (k-major), so one (3B, 3) @ (3, P) product gives all local coordinates.
        r = self.box_rotations
        axes = np.concatenate([r[:, :, k] for k in range(3)], axis=0)
        consts = {
            "centers": self.sphere_centers, "radii": self.sphere_radii[:, None], "axes": axes,
            "offsets": (axes * np.tile(self.box_centers, (3, 1))).sum(axis=1)[:, None],
            "half": self.box_half_extents.T.reshape(-1, 1),
        }
        object.__setattr__(self, "_consts", {
            np.dtype(dt): {k: np.ascontiguousarray(v, dtype=dt) for k, v in consts.items()}
            for dt in (np.float64, np.float32)
        })

    @property
    def ids(self) -> tuple[str, ...]:
        """Obstacle ids in the column order of `signed_distance` (spheres, then boxes)."""
        return self.sphere_ids + self.box_ids

    @property
    def is_empty(self) -> bool:
        return not self.ids

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """World-axis-aligned box around each obstacle: lower (M, 3) and upper (M, 3) corners, m."""
        half = np.concatenate([np.repeat(self.sphere_radii[:, None], 3, axis=1),
                               np.einsum("bij,bj->bi", np.abs(self.box_rotations), self.box_half_extents)])
        c = np.concatenate([self.sphere_centers, self.box_centers])
        return c - half, c + half

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
        """(M, P) signed distances for points given as planes (3, ...) (x, y, z), P = their count.

        Works on (obstacle, point) planes component by component: numpy reductions
        over a trailing axis of length 3 are slow, elementwise ops on planes are not
        (about 12x faster than the broadcast form for 2048 points). float32 in, float32 math.
        """
        dt = np.float32 if planes.dtype == np.float32 else np.float64
        c = self._consts[np.dtype(dt)]
        pt = np.ascontiguousarray(planes, dtype=dt).reshape(3, -1)                       # (3, P)
        out = np.empty((len(self), pt.shape[1]), dtype=dt)
        s = len(self.sphere_ids)
        if s:
            sq = out[:s]
            np.subtract(pt[0], c["centers"][:, 0:1], out=sq)
            sq *= sq
            for k in (1, 2):
                d = pt[k] - c["centers"][:, k:k + 1]
                d *= d
                sq += d
            np.sqrt(sq, out=sq)
            sq -= c["radii"]
        b = len(self.box_ids)
        if b:
            excess = c["axes"] @ pt                                                   # (3B, P) local coords
            excess -= c["offsets"]
            np.abs(excess, out=excess)
            excess -= c["half"]
            ex, ey, ez = excess[:b], excess[b:2 * b], excess[2 * b:]
            inside = np.maximum(ex, ey)
            np.maximum(inside, ez, out=inside)
            np.minimum(inside, 0.0, out=inside)
            np.maximum(excess, 0.0, out=excess)
            excess *= excess
            box = out[s:]
            np.add(ex, ey, out=box)
            box += ez
            np.sqrt(box, out=box)
            box += inside
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
