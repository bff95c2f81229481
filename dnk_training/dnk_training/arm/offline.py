"""One decision per unseen scene at its start state, through the planner core as the node runs it.

Cheap (seconds, no DDS, no sim) and telling: a model that has no feasible candidate at the start
of a scene makes the arm hold there in closed loop, and candidates that all lie within millimetres
of each other leave the selector no choice. This is how a new student is screened before Table II.

    dnk-train arm-start --model artifacts/arm/students/fdk.onnx --model analytic --scenes 100
"""
from __future__ import annotations

import numpy as np

from dnk_planner.core import Planner
from dnk_planner.core.arm_context import ArmContext
from dnk_planner.core.kinematics import forward_kinematics, wrap_to_pi
from dnk_planner.core.manifest import load_model
from dnk_planner.core.selectors import GeometricSelector
from dnk_planner.ros.node_config import NodeConfig

from .scenes import Scene


def start_decisions(model_path, scenes: list[Scene], temperature: float | None = None) -> dict:
    """Per scene: whether any candidate is feasible, and the candidates' end-effector spread (std of
    their row-H/2 positions, mm); with the node's default settings (planner.yaml's values)."""
    cfg = NodeConfig(model_path=str(model_path), **({} if temperature is None else {"temperature": temperature}))
    model = load_model(model_path, provider="cpu", threads=1)
    plan_dt = model.manifest.row_period_s or cfg.period_s
    selector = GeometricSelector(cfg.score_config(plan_dt))
    planner = Planner(model, selector, cfg.planner_config())
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
    return {"model": str(model_path), "model_id": model.manifest.model_id, "temperature": cfg.temperature,
            "scenes": len(scenes), "feasible_at_start": int(sum(feasible)),
            "feasible_fraction": float(np.mean(feasible)) if scenes else float("nan"),
            "candidate_spread_mm_median": float(np.median(spread)) if scenes else float("nan"),
            "decision_ms_median": float(np.median(latency)) if scenes else float("nan"),
            # share of the candidates failing each check, mean over scenes (a candidate may fail several)
            "rejected_share": {k: float(np.mean([r[k] for r in rejected])) for k in rejected[0]} if scenes else {},
            "feasible": feasible, "rejected": rejected}
