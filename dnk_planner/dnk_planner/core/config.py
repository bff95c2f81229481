"""Planner-core configuration (pydantic): units and ranges live in the field descriptions."""

from __future__ import annotations

import copy
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Provider = Literal["auto", "cpu", "cuda", "tensorrt"]


def field_of(model: type[BaseModel], name: str, **changes: Any) -> Any:
    """`model`'s field `name` (type, bounds, description) for reuse in another config.

    Front-end configs (the ROS node's parameters) take the core's fields this way, so each
    bound is written once; `changes` may set another `default` or `description`.
    """
    field = copy.copy(model.model_fields[name])
    for key, value in changes.items():
        setattr(field, key, value)
    return field


class PlannerConfig(BaseModel):
    """How many candidates to draw, how noisy, and how the student runs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    num_candidates: int = Field(64, ge=1, le=1024, description="Candidate trajectories per decision, N (1..1024).")
    temperature: float = Field(
        0.5, ge=0.0, le=2.0, description="Std of the prior noise in normalized units (0..2); 0 = deterministic."
    )
    seed: int = Field(0, ge=0, description="Seed of the prior noise generator; same seed = bit-identical replay.")
    provider: Provider = Field("auto", description="onnxruntime execution provider the models are loaded with.")
    threads: int = Field(1, ge=1, le=16, description="onnxruntime intra-op threads (1..16).")
    smoothing_degree: int = Field(
        0, ge=0, le=8, description="0 = off; d (1..8): each candidate's action column is projected (least squares) "
        "onto polynomials of degree <= d in time through its row 0 (the measured state). A learned generator's rows "
        "carry per-row noise (the arm teacher's: ~0.01 rad RMS) that makes the step from the measured state exceed "
        "the joint velocity limits; the projection removes it and keeps the plan's shape.")


class GeometricScoreConfig(BaseModel):
    """Weights of the arm's geometric score (clearance reward, effort penalty, goal progress)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    safety_margin_m: float = Field(
        0.03, ge=0.0, le=0.5, description="m (0..0.5); a candidate with any point closer than this is rejected."
    )
    limit_projection_rad: float = Field(
        0.05, ge=0.0, le=0.2,
        description="rad (0..0.2); planned joint positions at most this far beyond a position limit are put on the "
        "limit before scoring, farther ones reject the candidate. A goal at a joint limit (the IK solution of "
        "Table II scenes 28 and 49) otherwise leaves no candidate: the student's rows scatter ~0.01 rad around "
        "the limit, every plan crosses it, and the arm holds 2-4 cm short.",
    )
    goal_snap_rad: float = Field(
        0.1, ge=0.0, le=0.5,
        description="rad (0..0.5); when the chosen plan ends this close to the goal configuration (norm over "
        "the 7 joints), its rows are bent linearly onto it, and the bent plan is kept if it passes every check. "
        "The learned plans end within ~1 cm of a goal, not on it: in Table II the student came within 10-24 mm "
        "and wandered off. 0 = off.",
    )
    clearance_saturation_m: float = Field(
        0.15, gt=0.0, le=2.0, description="m (0..2]; clearance beyond the margin + this earns no extra reward."
    )
    w_clearance: float = Field(1.0, ge=0.0, le=1e3, description="1/m; weight of the summed saturating clearance.")
    w_effort: float = Field(
        0.05, ge=0.0, le=1e3,
        description="s^2/m^2; weight of mean squared velocity + mean squared acceleration along the path.",
    )
    w_progress: float = Field(
        10.0, ge=0.0, le=1e4, description="1/m; weight of (start-to-goal minus end-to-goal) distance."
    )
    dt: float = Field(0.05, gt=0.0, le=1.0, description="s (0..1]; time between waypoints (20 Hz = 0.05).")
