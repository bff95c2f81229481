"""Seeded random scenes for the arm: a start configuration, a goal, obstacles and a table.

Every scene is reproducible from (seed, index). The start and goal configurations keep the
whole-arm margin from every obstacle; in most scenes the first obstacle sits on (or grazes) the
straight end-effector segment, so a demonstration has to go around it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dnk_planner.core.arm_geometry import arm_clearance
from dnk_planner.core.geometry import ObstacleSet
from dnk_planner.core.kinematics import HOME_POSITIONS, JOINT_LOWER, JOINT_UPPER, forward_kinematics, solve_ik

from .config import SceneConfig

TABLE = ("table", (0.3, 0.0, -0.05), (0.0, 0.0, 0.0, 1.0), (1.6, 1.6, 0.1))   # top at z = 0, m
_LIMIT_INSET = 0.1  # rad kept from the position limits at the start


@dataclass(frozen=True)
class Scene:
    """One planning problem in base_link (m, rad)."""

    q_start: np.ndarray          # (7,)
    goal: np.ndarray             # (3,) end-effector goal
    goal_q: np.ndarray           # (7,) goal configuration (IK from the start, tool orientation kept)
    obstacles: ObstacleSet       # table included
    blocking: bool               # the first obstacle was placed on the straight segment


def _obstacle(rng: np.random.Generator, name: str, center: np.ndarray, cfg: SceneConfig):
    low, high = cfg.size_range_m
    if rng.random() < 0.5:
        return "sphere", (name, center, rng.uniform(low, high) / 2.0)
    yaw = rng.uniform(-np.pi, np.pi)
    return "box", (name, center, (0.0, 0.0, np.sin(yaw / 2.0), np.cos(yaw / 2.0)), rng.uniform(low, high, 3))


def _set(shapes: list[tuple[str, tuple]], table: bool) -> ObstacleSet:
    spheres = [s for kind, s in shapes if kind == "sphere"]
    boxes = [b for kind, b in shapes if kind == "box"] + ([TABLE] if table else [])
    return ObstacleSet.from_shapes(spheres=spheres, boxes=boxes)


def sample_scene(rng: np.random.Generator, cfg: SceneConfig, clearance: float) -> Scene:
    """Draw until a scene is valid: start and goal, whole arm and end effector, `clearance` (m) clear."""
    home = np.array(HOME_POSITIONS)
    keep = clearance
    while True:
        q0 = np.clip(home + rng.uniform(-cfg.start_spread_rad, cfg.start_spread_rad, 7),
                     JOINT_LOWER + _LIMIT_INSET, JOINT_UPPER - _LIMIT_INSET)
        pose = forward_kinematics(q0)
        start = pose[:3, 3]
        if start[2] < 0.08 or start[0] < 0.15:  # the tool in front of the robot, above the table
            continue
        goal = rng.uniform(cfg.goal_low, cfg.goal_high)
        if np.linalg.norm(goal - start) < cfg.min_travel_m:
            continue
        ik = solve_ik(goal, q0, pose[:3, :3])
        if not ik.converged:
            continue
        goal_q = ik.q
        count = int(rng.integers(cfg.min_obstacles, cfg.max_obstacles + 1))
        shapes: list[tuple[str, tuple]] = []
        blocking = count > 0 and rng.random() < cfg.blocking_fraction
        for k in range(count):
            if k == 0 and blocking:
                # on the segment between 30 % and 70 %, up to 2 cm off it
                t = rng.uniform(0.3, 0.7)
                center = start + t * (goal - start) + rng.normal(0.0, 0.02, 3)
            else:
                center = rng.uniform(np.minimum(start, goal) - 0.2, np.maximum(start, goal) + 0.2)
            center[2] = max(center[2], 0.05)
            shapes.append(_obstacle(rng, f"obstacle_{k}", center, cfg))
        obstacles = _set(shapes, cfg.table)
        q_pair = np.stack([q0, goal_q])
        if np.all(arm_clearance(q_pair, obstacles) >= keep) and \
                np.all(obstacles.min_signed_distance(np.stack([start, goal])) >= keep):
            return Scene(q0, goal, goal_q, obstacles, blocking)


def scene_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of scene `index` of a set seeded `seed` (independent streams per scene)."""
    return np.random.default_rng([seed, index])
