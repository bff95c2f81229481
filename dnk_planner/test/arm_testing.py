"""Shared helpers for the arm tests: the Gen3 start state, goals with their IK configuration, and an
independent whole-arm clearance (link_frames + collision_spheres, not the planner's fast kernel)."""

from __future__ import annotations

import numpy as np

from dnk_planner.core.arm_geometry import SPHERE_RADII, collision_spheres
from dnk_planner.core.geometry import ObstacleSet
from dnk_planner.core.kinematics import HOME_POSITIONS, forward_kinematics, link_frames, solve_ik

Q_HOME = np.array(HOME_POSITIONS)
EE_HOME = forward_kinematics(Q_HOME)[:3, 3]


def goal_context(offset, q: np.ndarray = Q_HOME) -> dict[str, np.ndarray]:
    """Context values for a goal at EE(q) + offset (m), keeping the current tool orientation."""
    pose = forward_kinematics(q)
    goal = pose[:3, 3] + np.asarray(offset, dtype=float)
    res = solve_ik(goal, q, pose[:3, :3])
    assert res.converged, "test goal must be reachable"
    return {"q": q, "goal": goal, "goal_q": res.q}


def arm_clearance(q: np.ndarray, obstacles: ObstacleSet) -> np.ndarray:
    """Whole-arm signed clearance (...) of joint vectors (..., 7): min over link spheres and obstacles."""
    centers = collision_spheres(link_frames(q))                     # (..., S, 3)
    return (obstacles.signed_distance(centers).min(axis=-1) - SPHERE_RADII).min(axis=-1)


def ee_positions(q: np.ndarray) -> np.ndarray:
    return forward_kinematics(q)[..., :3, 3]
