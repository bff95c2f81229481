"""Configuration of the arm demonstrations (config/arm_demos.yaml: base + presets smoke/small/paper)."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ..configs import CONFIG_DIR, load_preset_config


class SceneConfig(BaseModel):
    """How a random scene is drawn (base_link frame, REP-103: x forward, z up, m)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_obstacles: int = Field(1, ge=0, le=8, description="obstacles per scene besides the table, at least")
    max_obstacles: int = Field(4, ge=0, le=8, description="obstacles per scene besides the table, at most")
    size_range_m: tuple[float, float] = Field((0.04, 0.15), description="sphere diameter / box edge, m")
    blocking_fraction: float = Field(
        0.8, ge=0.0, le=1.0, description="share of scenes whose first obstacle blocks or grazes the straight "
        "end-effector segment (its surface within 2 cm of the segment or crossing it)")
    goal_low: tuple[float, float, float] = Field((0.25, -0.45, 0.08), description="goal box lower corner, m")
    goal_high: tuple[float, float, float] = Field((0.70, 0.45, 0.60), description="goal box upper corner, m")
    start_spread_rad: float = Field(0.7, gt=0.0, le=2.0, description="start = Home + U(-spread, spread) per joint, rad")
    min_travel_m: float = Field(0.15, ge=0.0, le=1.0, description="goals closer than this to the start EE are redrawn, m")
    table: bool = Field(True, description="a table box with its top at z = 0 under the whole workspace")


class PlannerSettings(BaseModel):
    """The B-spline optimizer (cross-entropy method over the interior control points)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    control_points: int = Field(7, ge=4, le=16, description="cubic B-spline control points, start and goal included")
    samples: int = Field(40, ge=8, le=256, description="path samples the cost is evaluated on")
    population: int = Field(128, ge=8, le=4096, description="CEM candidates per iteration")
    elites: int = Field(12, ge=1, le=512, description="CEM elites per iteration")
    iterations: int = Field(30, ge=1, le=500, description="CEM iterations at most")
    init_std_rad: float = Field(0.6, gt=0.0, le=3.0, description="initial std of the interior control points, rad")
    plan_buffer_m: float = Field(0.02, ge=0.0, le=0.2, description="clearance planned beyond the margin, m")
    speed_fraction: float = Field(0.5, gt=0.0, le=1.0, description="peak joint speed / URDF velocity limit")
    attempts: int = Field(3, ge=1, le=20, description="CEM restarts per scene (a scene with no success is dropped)")
    solutions: int = Field(
        1, ge=1, le=8, description="distinct paths kept per scene, each written as its own demonstration; > 1 "
        "makes the demos multimodal so the teacher (and the student's candidates) keep several ways around")
    distinct_rad: float = Field(
        0.35, gt=0.0, le=3.0, description="two solutions are distinct when their interior control points differ "
        "by at least this much (largest joint difference at any control point), rad")


class DemoConfig(BaseModel):
    """A demonstration set: how many scenes, in which shards, from which seed, validated how."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scenes: int = Field(2000, ge=1, description="scenes to generate")
    shard_size: int = Field(50, ge=1, le=10_000, description="scenes per resumable shard file")
    seed: int = Field(0, ge=0, description="scene seed; shard k uses seed * 1_000_003 + k")
    dt: float = Field(0.05, gt=0.0, le=1.0, description="control period the paths are written at, s (20 Hz)")
    margin_m: float = Field(0.03, ge=0.0, le=0.2, description="whole-arm clearance every written step keeps, m")
    validation_substeps: int = Field(4, ge=1, le=32, description="checks per control period (between rows too)")
    scene: SceneConfig = SceneConfig()
    planner: PlannerSettings = PlannerSettings()


def load_demo_config(preset: str = "small", overrides: dict[str, object] | None = None) -> DemoConfig:
    return load_preset_config(DemoConfig, CONFIG_DIR / "arm_demos.yaml", preset, overrides)
