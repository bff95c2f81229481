"""Offline screens of arm models through the planner core as the node runs it (no DDS, no sim).

`start_decisions`: one decision per unseen scene at its start state. A model that has no feasible
candidate at the start of a scene makes the arm hold there in closed loop, and candidates that all lie
within millimetres of each other leave the selector no choice.
`rollouts`: the node's loop (decide every `replan_every` periods, follow the plan in between:
core.execution) with an ideal joint tracker (the arm is where the last command put it, 50 ms
later), scored by the trials' own `measure`: whether a model settles at the goal at all, in
seconds per scene, before Table II spends minutes over DDS on it. An ideal tracker is not the sim:
this is a screen, Table II is the result.

    dnk-train arm-start --model artifacts/arm/students/fdk.onnx --model analytic --scenes 100 [--steps 400]
"""
from __future__ import annotations

import numpy as np

from dnk_planner.core import Planner
from dnk_planner.core.arm_context import ArmContext
from dnk_planner.core.execution import PlanFollower
from dnk_planner.core.kinematics import forward_kinematics, wrap_to_pi
from dnk_planner.core.manifest import load_model
from dnk_planner.core.selectors import GeometricSelector
from dnk_planner.ros.node_config import NodeConfig

from .scenes import Scene
from .trials import measure


def node_planner(model_path, temperature: float | None,
                  params: dict | None = None) -> tuple[NodeConfig, Planner, GeometricSelector]:
    """The planner with the node's settings: its defaults, `params` (node parameter name -> value) over them."""
    cfg = NodeConfig(model_path=str(model_path), **(params or {}),
                     **({} if temperature is None else {"temperature": temperature}))
    model = load_model(model_path, provider="cpu", threads=1)
    selector = GeometricSelector(cfg.score_config(model.manifest.row_period_s or cfg.period_s))
    return cfg, Planner(model, selector, cfg.planner_config(model.manifest)), selector


def start_decisions(model_path, scenes: list[Scene], temperature: float | None = None,
                    params: dict | None = None) -> dict:
    """Per scene: whether any candidate is feasible, and the candidates' end-effector spread (std of
    their row-H/2 positions, mm)."""
    cfg, planner, selector = node_planner(model_path, temperature, params)
    model = planner.student
    build = ArmContext(model.manifest)
    feasible, spread, latency, rejected = [], [], [], []
    for scene in scenes:
        # as the driver reports it: continuous joints wrapped
        ctx = build.build(wrap_to_pi(scene.q_start), scene.goal, scene.goal_q, scene.obstacles)
        d = planner.plan(ctx)
        mid = forward_kinematics(d.candidates[:, d.candidates.shape[1] // 2, :7].astype(np.float64))[:, :3, 3]
        feasible.append(bool(d.feasible))
        spread.append(float(np.linalg.norm(mid.std(axis=0)) * 1e3))
        latency.append(d.timing["total_ms"])
        rejected.append({k: float(v.mean()) for k, v in selector.rejections(d.candidates, ctx).items()})
    return {"model": str(model_path), "model_id": model.manifest.model_id, "temperature": planner.config.temperature,
            "scenes": len(scenes), "feasible_at_start": int(sum(feasible)),
            "feasible_fraction": float(np.mean(feasible)) if scenes else float("nan"),
            "candidate_spread_mm_median": float(np.median(spread)) if scenes else float("nan"),
            "decision_ms_median": float(np.median(latency)) if scenes else float("nan"),
            # share of the candidates failing each check, mean over scenes (a candidate may fail several)
            "rejected_share": {k: float(np.mean([r[k] for r in rejected])) for k in rejected[0]} if scenes else {},
            "feasible": feasible, "rejected": rejected}


def rollouts(model_path, scenes: list[Scene], steps: int, temperature: float | None = None,
             params: dict | None = None) -> dict:
    """Per scene: `steps` control periods of plan -> execute the action exactly (hold when no candidate
    is feasible), measured by `trials.measure` from the executed joints; the node's goal tolerance
    stops planning as the node does (GOAL_REACHED holds)."""
    cfg, planner, _ = node_planner(model_path, temperature, params)
    build = ArmContext(planner.manifest)
    results = []
    for scene in scenes:
        q = wrap_to_pi(scene.q_start).astype(np.float64)
        executed, holds = [q], 0
        follower = PlanFollower(cfg.replan_every, cfg.period_s, planner.manifest.row_period_s or cfg.period_s,
                                cfg.follow_tolerance_rad)
        for _ in range(steps):
            if np.linalg.norm(forward_kinematics(q)[:3, 3] - scene.goal) <= cfg.goal_tolerance_m:
                executed.append(q)
                continue
            if follower.due(q):  # (static obstacles: a followed plan stays clear)
                d = planner.plan(build.build(q, scene.goal, scene.goal_q, scene.obstacles))
                if d.feasible:
                    q = wrap_to_pi(follower.commit(d.trajectory[:, :7]))
                else:  # hold where it is, as the node does
                    holds += 1
                    follower.drop()
            else:
                q = wrap_to_pi(follower.advance())
            executed.append(q)
        times = np.arange(len(executed)) * cfg.period_s
        r = measure(times, np.array(executed), scene, times[-1])
        r.pop("ee_path")
        results.append({**r, "holds": holds})
    reached = [r["reached"] and r["min_arm_clearance_mm"] > 0 for r in results]
    return {"model": str(model_path), "model_id": planner.manifest.model_id, "steps": steps,
            "temperature": planner.config.temperature, "params": params or {}, "score": cfg.score_config().model_dump(),
            "scenes": len(scenes), "reached": int(sum(reached)),
            "terminal_error_mm_median": float(np.median([r["terminal_error_mm"] for r in results])),
            "min_arm_clearance_mm": float(min(r["min_arm_clearance_mm"] for r in results)),
            "results": results}
