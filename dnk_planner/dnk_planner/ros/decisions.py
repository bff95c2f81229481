"""A planner decision as a `dnk_msgs/PlannerDecision`, and back to the planner core's inputs.

Both directions live here so the recorded fields and what `dnk-replay` feeds the core again can
never drift apart. Only attribute access: the same code reads an rclpy message and the rosbags
message a bag reader gives, so the replay needs no ROS executor.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from dnk_planner.core.config import GeometricScoreConfig, PlannerConfig
from dnk_planner.core.geometry import ObstacleSet
from dnk_planner.core.planner import Context, Decision


def fill_decision(msg, decision: Decision, ctx: Context, cycle: int, model_sha256: str, model_id: str,
                  planner_config_json: str, score_config_json: str):
    """Write one decision and everything it was made from into `msg` (a PlannerDecision); returns it."""
    msg.cycle = int(cycle)
    msg.model_id, msg.model_sha256 = model_id, model_sha256
    msg.planner_config_json, msg.score_config_json = planner_config_json, score_config_json
    keys = list(ctx.values)
    parts = [np.asarray(ctx.values[k], dtype=np.float64).reshape(-1) for k in keys]
    msg.context_keys = keys
    msg.context_sizes = [len(p) for p in parts]
    msg.context_values = np.concatenate(parts).tolist() if parts else []
    obs = ctx.obstacles if ctx.obstacles is not None else ObstacleSet.empty()
    msg.sphere_ids, msg.box_ids = list(obs.sphere_ids), list(obs.box_ids)
    msg.sphere_centers = obs.sphere_centers.reshape(-1).tolist()
    msg.sphere_radii = obs.sphere_radii.reshape(-1).tolist()
    msg.box_centers = obs.box_centers.reshape(-1).tolist()
    msg.box_rotations = obs.box_rotations.reshape(-1).tolist()
    msg.box_half_extents = obs.box_half_extents.reshape(-1).tolist()
    msg.prior_generator_state = np.array(decision.generator_state, dtype=np.uint64)
    msg.best_index = int(decision.best_index)
    msg.scores = decision.scores.astype(np.float64).tolist()
    msg.action = decision.action.astype(np.float32).reshape(-1).tolist()
    msg.timing_keys = list(decision.timing)
    msg.timing_ms = [float(v) for v in decision.timing.values()]
    return msg


@dataclass(frozen=True)
class RecordedDecision:
    """What a PlannerDecision message says: the core's inputs and the outcome to compare against."""

    context: Context
    generator_state: tuple[int, ...]
    planner_config: PlannerConfig
    score_config: GeometricScoreConfig
    model_id: str
    model_sha256: str
    cycle: int
    best_index: int
    scores: np.ndarray
    action: np.ndarray
    timing: dict[str, float]


def read_decision(msg) -> RecordedDecision:
    """The recorded decision of a PlannerDecision message; ValueError names an inconsistent field."""
    sizes = [int(s) for s in msg.context_sizes]
    values = np.asarray(msg.context_values, dtype=np.float64)
    if len(sizes) != len(msg.context_keys) or sum(sizes) != len(values):
        raise ValueError(f"context_sizes {sizes} do not match context_keys ({len(msg.context_keys)}) and "
                         f"context_values ({len(values)})")
    bounds = np.cumsum([0] + sizes)
    ctx_values = {k: values[a:b].copy() for k, a, b in zip(msg.context_keys, bounds[:-1], bounds[1:])}
    ns, nb = len(msg.sphere_ids), len(msg.box_ids)
    obstacles = ObstacleSet(
        tuple(msg.sphere_ids), np.asarray(msg.sphere_centers, dtype=np.float64).reshape(ns, 3),
        np.asarray(msg.sphere_radii, dtype=np.float64).reshape(ns), tuple(msg.box_ids),
        np.asarray(msg.box_centers, dtype=np.float64).reshape(nb, 3),
        np.asarray(msg.box_rotations, dtype=np.float64).reshape(nb, 3, 3),
        np.asarray(msg.box_half_extents, dtype=np.float64).reshape(nb, 3))
    return RecordedDecision(
        context=Context(values=ctx_values, obstacles=obstacles),
        generator_state=tuple(int(v) for v in msg.prior_generator_state),
        planner_config=PlannerConfig.model_validate(json.loads(msg.planner_config_json)),
        score_config=GeometricScoreConfig.model_validate(json.loads(msg.score_config_json)),
        model_id=msg.model_id, model_sha256=msg.model_sha256, cycle=int(msg.cycle), best_index=int(msg.best_index),
        scores=np.asarray(msg.scores, dtype=np.float64), action=np.asarray(msg.action, dtype=np.float32),
        timing=dict(zip(msg.timing_keys, (float(v) for v in msg.timing_ms))))
