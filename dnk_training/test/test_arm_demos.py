"""Arm demonstrations: seeded scenes, whole-arm-clear B-spline paths within limits, resumable shards,
and the obstacle encoding shared with the runtime."""
from __future__ import annotations

import numpy as np
import pytest

from dnk_planner.core import obstacle_encoding
from dnk_planner.core.arm_geometry import SPHERE_RADII, collision_spheres
from dnk_planner.core.geometry import ObstacleSet
from dnk_planner.core.kinematics import (HOME_POSITIONS, JOINT_LOWER, JOINT_UPPER, JOINT_VELOCITY_LIMITS,
                                         forward_kinematics, link_frames)
from dnk_training.arm import demos as demos_module
from dnk_training.arm.bspline import bspline_basis
from dnk_training.arm.config import load_demo_config
from dnk_training.arm.demos import generate_demos, load_demos
from dnk_training.arm.scenes import sample_scene, scene_rng
from dnk_training.arm.windows import split_scenes
from dnk_training.datasets import DatasetError


def reference_clearance(q: np.ndarray, obstacles: ObstacleSet) -> np.ndarray:
    """Whole-arm clearance by the slow reference path (link_frames + collision_spheres), not the planner kernel."""
    centers = collision_spheres(link_frames(q))
    return (obstacles.signed_distance(centers).min(axis=-1) - SPHERE_RADII).min(axis=-1)


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    cfg = load_demo_config("smoke", {"scenes": 6, "shard_size": 3})
    out = tmp_path_factory.mktemp("demos") / "arm"
    index = generate_demos(cfg, out, workers=1, progress=False)
    return out, cfg, index


def test_bspline_basis_is_a_clamped_partition_of_unity() -> None:
    u = np.linspace(0.0, 1.0, 101)
    b = bspline_basis(7, u)
    np.testing.assert_allclose(b.sum(axis=1), 1.0, atol=1e-12)
    assert b[0, 0] == pytest.approx(1.0) and b[-1, -1] == pytest.approx(1.0, abs=1e-9)
    assert np.all(b >= -1e-15)


def test_scenes_are_seeded_and_start_and_goal_keep_the_margin() -> None:
    cfg = load_demo_config("smoke").scene
    a = sample_scene(scene_rng(3, 17), cfg, 0.05)
    b = sample_scene(scene_rng(3, 17), cfg, 0.05)
    c = sample_scene(scene_rng(3, 18), cfg, 0.05)
    np.testing.assert_array_equal(a.q_start, b.q_start)
    np.testing.assert_array_equal(a.obstacles.sphere_centers, b.obstacles.sphere_centers)
    np.testing.assert_array_equal(a.obstacles.box_centers, b.obstacles.box_centers)
    assert not np.array_equal(a.q_start, c.q_start)
    for scene in (a, c):
        assert reference_clearance(np.stack([scene.q_start, scene.goal_q]), scene.obstacles).min() >= 0.05
        np.testing.assert_allclose(forward_kinematics(scene.goal_q)[:3, 3], scene.goal, atol=2e-4)
        assert "table" in scene.obstacles.ids


def test_demo_paths_are_clear_for_the_whole_arm_and_within_limits(demo_dir) -> None:
    out, cfg, index = demo_dir
    demos = load_demos(out)
    assert len(demos) + index["summary"]["dropped"] == 6 and len(demos) >= 4
    dt = cfg.dt
    for e in range(len(demos)):
        q = demos.episode(e)
        obstacles = demos.obstacle_set(e)
        assert len(q) >= 5
        np.testing.assert_allclose(q[0], demos.q_start[e])
        np.testing.assert_allclose(q[-1], demos.goal_q[e])
        # rows and the midpoints between them, by the reference FK
        dense = np.concatenate([q, (q[1:] + q[:-1]) / 2])
        assert reference_clearance(dense, obstacles).min() >= cfg.margin_m - 1e-6, f"episode {e}"
        assert np.all(q >= JOINT_LOWER) and np.all(q <= JOINT_UPPER)
        assert np.all(np.abs(np.diff(q, axis=0)) / dt <= JOINT_VELOCITY_LIMITS), f"episode {e} too fast"
        assert np.abs(q[1] - q[0]).max() / dt < 0.1, "the arm starts at rest"


def test_most_scenes_are_blocked_and_demos_go_around(demo_dir) -> None:
    """The blocking obstacle makes the straight joint interpolation collide in most scenes: the
    demonstrations are detours, not straight lines."""
    out, _, _ = demo_dir
    demos = load_demos(out)
    straight_hits = 0
    for e in range(len(demos)):
        line = np.linspace(demos.q_start[e], demos.goal_q[e], 40)
        straight_hits += reference_clearance(line, demos.obstacle_set(e)).min() < 0.03
    assert straight_hits >= 1


def test_multimodal_demos_keep_distinct_solutions_of_one_scene(tmp_path) -> None:
    """planner.solutions > 1 writes several valid, different paths per scene under one scene_index,
    and the held-out split never puts two solutions of one scene on both sides."""
    cfg = load_demo_config("smoke", {"scenes": 4, "shard_size": 4, "planner.solutions": 3, "planner.attempts": 5,
                                     "planner.distinct_rad": 0.2})
    index = generate_demos(cfg, tmp_path / "multi", workers=1, progress=False)
    demos = load_demos(tmp_path / "multi")
    assert index["summary"]["demos"] == len(demos) > index["summary"]["scenes"]
    scenes, counts = np.unique(demos.scene_index, return_counts=True)
    assert counts.max() >= 2 and counts.max() <= 3
    for scene in scenes[counts >= 2]:
        eps = np.flatnonzero(demos.scene_index == scene)
        assert np.all(np.diff(eps) == 1), "solutions of a scene are adjacent"
        for e in eps:
            np.testing.assert_array_equal(demos.q_start[e], demos.q_start[eps[0]])
            np.testing.assert_array_equal(demos.obstacles[e], demos.obstacles[eps[0]])
            q = demos.episode(int(e))
            assert reference_clearance(q, demos.obstacle_set(int(e))).min() >= cfg.margin_m - 1e-6
            assert np.all(np.abs(np.diff(q, axis=0)) / cfg.dt <= JOINT_VELOCITY_LIMITS)
        a, b = demos.episode(int(eps[0])), demos.episode(int(eps[1]))
        mid_a, mid_b = a[len(a) // 2], b[len(b) // 2]
        assert np.abs(mid_a - mid_b).max() > 0.05, "two solutions of a scene are different paths"
    train, held = split_scenes(demos, 0.5)
    assert set(demos.scene_index[train]).isdisjoint(demos.scene_index[held])
    assert len(train) + len(held) == len(demos) and len(set(demos.scene_index[held])) == 2


def test_generation_resumes_and_refuses_another_config(demo_dir) -> None:
    out, cfg, _ = demo_dir
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("shard_*.npz")}
    generate_demos(cfg, out, workers=1, progress=False)
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("shard_*.npz")} == before, "nothing regenerated"
    with pytest.raises(ValueError, match="another config"):
        generate_demos(load_demo_config("smoke", {"scenes": 6, "shard_size": 3, "seed": 1}), out, workers=1,
                       progress=False)


def test_load_demos_names_the_broken_file(demo_dir, tmp_path) -> None:
    with pytest.raises(DatasetError, match="index.json"):
        load_demos(tmp_path)
    out, _, _ = demo_dir
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "index.json").write_text((out / "index.json").read_text())
    with pytest.raises(DatasetError, match="missing"):
        load_demos(broken)


def test_obstacle_encoding_is_the_runtime_function_and_round_trips() -> None:
    assert demos_module.encode_obstacles is obstacle_encoding.encode_obstacles
    q = np.array(HOME_POSITIONS)
    ee = forward_kinematics(q)[:3, 3]
    obstacles = ObstacleSet.from_shapes(
        spheres=[("far", ee + [0.0, 0.6, 0.0], 0.05), ("near", ee + [0.0, 0.12, 0.0], 0.03)],
        boxes=[("crate", ee + [0.0, -0.3, 0.0], (0.0, 0.0, 0.3827, -0.9239), (0.1, 0.2, 0.05))])
    enc = obstacle_encoding.encode_obstacles(obstacles, q, slots=4).reshape(4, -1)
    assert enc.shape[1] == obstacle_encoding.NUM_FEATURES
    np.testing.assert_allclose(enc[:, 0], [1, 1, 1, 0])                            # 3 present, 1 empty slot
    np.testing.assert_allclose(enc[0, 2:5], ee + [0.0, 0.12, 0.0], atol=1e-6)      # nearest first
    assert enc[1, 1] == 1.0 and enc[1, 11] >= 0.0                                  # the box, w >= 0
    np.testing.assert_array_equal(enc[3], 0.0)
    back = obstacle_encoding.decode_obstacles(enc.reshape(-1))
    pts = np.random.default_rng(0).uniform(-1, 1, (200, 3))
    np.testing.assert_allclose(np.sort(back.signed_distance(pts), axis=1), np.sort(obstacles.signed_distance(pts), axis=1),
                               atol=1e-5)
    truncated = obstacle_encoding.encode_obstacles(obstacles, q, slots=2).reshape(2, -1)
    np.testing.assert_array_equal(truncated, enc[:2])
