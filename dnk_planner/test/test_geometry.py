"""Signed distances checked against hand-computed values; validation names the obstacle."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dnk_planner.core.geometry import ObstacleSet, matrix_to_quat, quat_to_matrix

IDENTITY = (0.0, 0.0, 0.0, 1.0)
Z90 = (0.0, 0.0, math.sin(math.pi / 4), math.cos(math.pi / 4))
Z45 = (0.0, 0.0, math.sin(math.pi / 8), math.cos(math.pi / 8))


def sd(obstacles: ObstacleSet, *points) -> np.ndarray:
    return obstacles.signed_distance(np.array(points, dtype=float))


def test_sphere_outside_surface_inside() -> None:
    obs = ObstacleSet.from_shapes(spheres=[("ball", (1.0, 0.0, 0.0), 0.5)])
    d = sd(obs, (3.0, 0.0, 0.0), (1.0, 0.5, 0.0), (1.0, 0.0, 0.0), (1.0, 0.0, 0.3))
    np.testing.assert_allclose(d[:, 0], [1.5, 0.0, -0.5, -0.2], atol=1e-12)


def test_axis_aligned_box_faces_edges_inside() -> None:
    obs = ObstacleSet.from_shapes(boxes=[("crate", (0.0, 0.0, 0.0), IDENTITY, (2.0, 4.0, 6.0))])
    d = sd(obs, (3.0, 0.0, 0.0), (0.0, 0.0, 4.0), (2.0, 3.0, 0.0), (0.0, 0.0, 0.0), (0.5, 0.0, 0.0))
    np.testing.assert_allclose(d[:, 0], [2.0, 1.0, math.sqrt(2.0), -1.0, -0.5], atol=1e-12)


def test_rotated_box() -> None:
    # 90 deg about z: the 4 m edge now lies along world x.
    obs = ObstacleSet.from_shapes(boxes=[("rot", (1.0, 1.0, 0.0), Z90, (2.0, 4.0, 6.0))])
    d = sd(obs, (4.0, 1.0, 0.0), (1.0, 3.0, 0.0), (1.0, 1.0, 0.0))
    np.testing.assert_allclose(d[:, 0], [1.0, 1.0, -1.0], atol=1e-12)
    # 45 deg: a unit-half cube's corner points along +x at sqrt(2).
    cube = ObstacleSet.from_shapes(boxes=[("diamond", (0.0, 0.0, 0.0), Z45, (2.0, 2.0, 2.0))])
    np.testing.assert_allclose(sd(cube, (2.0, 0.0, 0.0))[:, 0], [2.0 - math.sqrt(2.0)], atol=1e-12)


def test_batched_shapes_and_column_order() -> None:
    obs = ObstacleSet.from_shapes(spheres=[("s", (0.0, 0.0, 0.0), 0.1)],
                                  boxes=[("b", (1.0, 0.0, 0.0), IDENTITY, (0.2, 0.2, 0.2))])
    pts = np.random.default_rng(0).uniform(-1, 2, (64, 32, 3))
    d = obs.signed_distance(pts)
    assert d.shape == (64, 32, 2) and obs.ids == ("s", "b")
    np.testing.assert_allclose(d[..., 0], np.linalg.norm(pts, axis=-1) - 0.1)
    assert ObstacleSet.empty().signed_distance(pts).shape == (64, 32, 0)
    assert ObstacleSet.empty().is_empty and not obs.is_empty


def test_quaternion_conversions_round_trip() -> None:
    rng = np.random.default_rng(1)
    for q in rng.standard_normal((20, 4)):
        q /= np.linalg.norm(q)
        q = -q if q[3] < 0 else q
        r = quat_to_matrix(q)
        np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
        np.testing.assert_allclose(matrix_to_quat(r), q, atol=1e-12)
    np.testing.assert_allclose(quat_to_matrix(Z90) @ [1, 0, 0], [0, 1, 0], atol=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"spheres": [("a", (0, np.nan, 0), 0.1)]}, "'a': center"),
        ({"spheres": [("b", (0, 0, 0), 0.0)]}, "'b': radius"),
        ({"spheres": [("c", (0, 0, 0), 12.0)]}, "'c': radius"),
        ({"boxes": [("d", (0, 0, 0), (0, 0, 0, 0), (1, 1, 1))]}, "'d': orientation"),
        ({"boxes": [("e", (0, 0, 0), IDENTITY, (1, -1, 1))]}, "'e': size"),
        ({"boxes": [("f", (0, 0, 0), (0, 0, np.inf, 1), (1, 1, 1))]}, "'f': orientation"),
        ({"spheres": [("g", (0, 0, 0), 0.1)], "boxes": [("g", (0, 0, 0), IDENTITY, (1, 1, 1))]}, "'g': id"),
    ],
)
def test_validation_names_obstacle_and_field(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ObstacleSet.from_shapes(**kwargs)


def test_min_signed_distance_matches_and_handles_empty() -> None:
    obs = ObstacleSet.from_shapes(spheres=[("s", (0.2, 0.0, 0.1), 0.1)],
                                  boxes=[("b", (1.0, 0.0, 0.0), Z45, (0.2, 0.4, 0.2)),
                                         ("c", (0.0, 1.0, 0.5), (0.3, 0.1, 0.2, 0.9), (0.3, 0.3, 0.6))])
    pts = np.random.default_rng(2).uniform(-1, 2, (8, 5, 3))
    np.testing.assert_allclose(obs.min_signed_distance(pts), obs.signed_distance(pts).min(axis=-1))
    assert np.all(np.isposinf(ObstacleSet.empty().min_signed_distance(pts)))
    # brute force for the rotated box: sample the box volume, nearest sampled point bounds the distance
    local = np.random.default_rng(3).uniform(-1, 1, (20000, 3)) * [0.15, 0.15, 0.3]
    world = local @ quat_to_matrix((0.3, 0.1, 0.2, 0.9)).T + [0.0, 1.0, 0.5]
    p = np.array([0.4, 1.3, 0.2])
    d = obs.signed_distance(p)[2]
    assert d > 0 and d <= np.linalg.norm(world - p, axis=-1).min() + 1e-9
    assert d >= np.linalg.norm(world - p, axis=-1).min() - 0.02


def test_subset_and_nearest() -> None:
    obs = ObstacleSet.from_shapes(spheres=[("s", (0.2, 0.0, 0.1), 0.1), ("far", (5.0, 0.0, 0.0), 0.1)],
                                  boxes=[("b", (1.0, 0.0, 0.0), Z45, (0.2, 0.4, 0.2))])
    sub = obs.subset(np.array([True, False, True]))
    assert sub.ids == ("s", "b")
    pts = np.random.default_rng(0).uniform(-1, 2, (50, 3))
    np.testing.assert_allclose(sub.signed_distance(pts), obs.signed_distance(pts)[:, [0, 2]])
    kept, left_out = obs.nearest(np.array([[0.9, 0.0, 0.0], [0.0, 0.0, 0.0]]), 2)
    assert set(kept.ids) == {"s", "b"} and left_out == 1
    assert obs.nearest(pts, 3) == (obs, 0)
