"""The context an arm model plans from, built from what the robot measures.

One code path for every front end (the ROS node, offline evaluation, the trial analysis): the
measured joints in the chart the model was trained in, the goal configuration next to them, and
the obstacle slots of `obstacle_encoding` encoded at the measured configuration.
"""
from __future__ import annotations

import numpy as np

from dnk_planner.core.geometry import ObstacleSet
from dnk_planner.core.kinematics import JOINT_LOWER, unwrap_near
from dnk_planner.core.manifest import ModelContractError, ModelManifest
from dnk_planner.core.obstacle_encoding import NUM_FEATURES, encode_obstacles, slots_of
from dnk_planner.core.planner import Context


def joint_chart_center(manifest: ModelManifest) -> np.ndarray | None:
    """The normalizer mean of the absolute column the context key `q` fixes (None without one): measured
    joint angles are unwrapped next to it, into the chart the model was trained in."""
    relative = {r.column for r in manifest.relative}
    entry = next((f for f in manifest.fixed if f.source == "q" and f.column not in relative), None)
    if entry is None or manifest.column_dim(entry.column) != len(JOINT_LOWER):
        return None
    return np.asarray(manifest.normalizer.mean, dtype=np.float64)[manifest.column_slices[entry.column]]


def obstacle_slots(manifest: ModelManifest) -> int:
    """Obstacle slots the student is conditioned on (its fixed column sourced `obstacles`), 0 if none."""
    entry = next((f for f in manifest.fixed if f.source == "obstacles"), None)
    if entry is None:
        return 0
    dim = manifest.column_dim(entry.column)
    try:
        if entry.rows != "all":
            raise ValueError(f"rows is {entry.rows!r}, not 'all'")
        return slots_of(dim)
    except ValueError as err:
        raise ModelContractError("fixed", f"column {entry.column!r} (dim {dim}) is sourced from 'obstacles' but is not "
                                 f"slots x {NUM_FEATURES} features on every row ({err})",
                                 "export the student with dnk_planner.core.obstacle_encoding's layout") from err


class ArmContext:
    """Builds `Context`s for one arm model (its joint chart and obstacle slots, resolved once)."""

    def __init__(self, manifest: ModelManifest) -> None:
        self.q_center = joint_chart_center(manifest)
        self.slots = obstacle_slots(manifest)

    def build(self, q: np.ndarray, goal: np.ndarray, goal_q: np.ndarray, obstacles: ObstacleSet) -> Context:
        """q: measured joints (continuous ones wrapped to [-pi, pi] as the driver reports them), rad;
        goal: end-effector position, m; goal_q: a goal configuration, rad; obstacles: planning frame."""
        # joint_3 of a Home-centred model lives near pi, where the wrap would flip it to -pi; goal_q
        # next to the result, so a wrap never becomes a full-turn plan
        q_model = q if self.q_center is None else unwrap_near(q, self.q_center)
        values = {"q": q_model, "goal": goal, "goal_q": unwrap_near(goal_q, q_model)}
        if self.slots:  # an obstacle-conditioned student: the encoding training used
            values["obstacles"] = encode_obstacles(obstacles, q, self.slots)
        return Context(values=values, obstacles=obstacles)
