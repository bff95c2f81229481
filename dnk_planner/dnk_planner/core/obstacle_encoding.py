"""Fixed-size obstacle encoding: the one function training and runtime both call.

A conditioned arm model sees the obstacle set as K slots of F features in the planning frame:
the K obstacles nearest the arm (whole-arm collision spheres and the end effector at the
current configuration), nearest first, empty slots zero with `present` = 0:

    slot = [present, is_box, cx, cy, cz, sx, sy, sz, qx, qy, qz, qw]    (m; sizes are full extents)

Spheres have sx = sy = sz = diameter and the identity quaternion; box quaternions are xyzw with
w >= 0 (q and -q are the same rotation, the encoding must not see two). The manifest declares the
slots as a fixed column filled from the context key `obstacles` (K * F values, every row).
"""
from __future__ import annotations

import numpy as np

from dnk_planner.core.arm_geometry import arm_points
from dnk_planner.core.geometry import ObstacleSet, matrix_to_quat

FEATURES = ("present", "is_box", "cx", "cy", "cz", "sx", "sy", "sz", "qx", "qy", "qz", "qw")
NUM_FEATURES = len(FEATURES)


def slots_of(dim: int) -> int:
    """Obstacle slots in a column of `dim` values; ValueError unless it is a whole number of slots."""
    if dim <= 0 or dim % NUM_FEATURES:
        raise ValueError(f"an obstacle column of {dim} values is not a whole number of {NUM_FEATURES}-feature slots")
    return dim // NUM_FEATURES


def encode_obstacles(obstacles: ObstacleSet | None, q: np.ndarray, slots: int) -> np.ndarray:
    """(slots * NUM_FEATURES,) float32 encoding of the `slots` obstacles nearest the arm at joint
    configuration `q` (7,), nearest first; ties keep spheres before boxes, then id order."""
    out = np.zeros((slots, NUM_FEATURES), dtype=np.float32)
    if obstacles is None or obstacles.is_empty:
        return out.reshape(-1)
    order = obstacles.nearest_order(arm_points(q))[:slots]
    n_spheres = len(obstacles.sphere_ids)
    for slot, k in enumerate(order):
        row = out[slot]
        row[0] = 1.0
        if k < n_spheres:
            row[2:5] = obstacles.sphere_centers[k]
            row[5:8] = 2.0 * obstacles.sphere_radii[k]
            row[11] = 1.0
        else:
            b = k - n_spheres
            row[1] = 1.0
            row[2:5] = obstacles.box_centers[b]
            row[5:8] = 2.0 * obstacles.box_half_extents[b]
            row[8:12] = matrix_to_quat(obstacles.box_rotations[b])
    return out.reshape(-1)


def decode_obstacles(encoding: np.ndarray) -> ObstacleSet:
    """The ObstacleSet an encoding describes (present slots only); for checks and plots."""
    rows = np.asarray(encoding, dtype=np.float64).reshape(-1, NUM_FEATURES)
    spheres, boxes = [], []
    for k, row in enumerate(rows):
        if row[0] < 0.5:
            continue
        if row[1] < 0.5:
            spheres.append((f"slot{k}", row[2:5], row[5] / 2.0))
        else:
            boxes.append((f"slot{k}", row[2:5], row[8:12], row[5:8]))
    return ObstacleSet.from_shapes(spheres=spheres, boxes=boxes)
