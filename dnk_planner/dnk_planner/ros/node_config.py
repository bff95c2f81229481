"""The planner node's configuration: one pydantic model that ROS parameters map onto 1:1.

Keeping the node's parameters in a pydantic model (instead of ad-hoc get_parameter calls)
gives one place for units, ranges and defaults, shared by `--params-file`, the launch files
and the tests; the node declares every field as a ROS parameter with its description. The
planner and scoring fields are the core's own (`field_of`), so their bounds are written once,
in `dnk_planner.core.config`, and `planner_config` / `score_config` hand them back.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dnk_planner.core.config import GeometricScoreConfig, PlannerConfig, Provider, field_of
from dnk_planner.core.kinematics import JOINT_NAMES
from dnk_planner.core.manifest import ModelManifest

ControllerMode = Literal["pose", "twist", "joint_trajectory"]
AngularUnit = Literal["deg_per_s", "rad_per_s"]


class NodeConfig(BaseModel):
    """Everything the planner node reads at `configure` (docs/interfaces.md, Planner node)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_path: str = Field(
        "", description="Path to the arm student .onnx (its .json manifest lies beside it). Required.")
    provider: Provider = field_of(PlannerConfig, "provider")
    threads: int = field_of(PlannerConfig, "threads")
    rate_hz: float = Field(20.0, ge=1.0, le=500.0, description="Control rate, Hz (1..500); the paper's arm runs at 20.")
    decision_deadline_ms: float = Field(
        0.0, ge=0.0, le=1000.0,
        description="A decision slower than this is a deadline miss, ms (0 = one control period).")
    num_candidates: int = field_of(PlannerConfig, "num_candidates")
    replan_every: int = Field(
        8, ge=1, le=16, description="Control periods between decisions (1..16); in between the arm follows the last "
        "decision's plan one row per period (an action chunk) while what is left of it keeps the safety margin "
        "from the current obstacles, else the node decides at once. 1 = the paper's receding horizon (first action "
        "only). Default 8: the shipped student sees no joint velocity, so re-planned every period it restarts "
        "the demonstrations' ease-in and creeps near goals (dnk_planner.core.execution).")
    follow_tolerance_rad: float = Field(
        0.02, gt=0.0, le=0.5, description="Between decisions, a measured joint farther than this from the last "
        "command makes the node decide at once from where the arm is, rad (0..0.5]: an arm that does not follow "
        "is never commanded further ahead of itself.")
    temperature: float = Field(
        -1.0, ge=-1.0, le=2.0, description="Std of the prior noise in normalized units (0..2; 0 = deterministic); "
        "-1 (default) = the model manifest's prior_temperature (else the core's default). The shipped student's is "
        "1.5: it reached 17/20 unseen scenes offline at 1.5, 12/20 at 1.0, 6/20 at 0.5 (reports/arm_distill_rel); "
        "the analytic test model's is 0.5 (1/20 at 1.5).")
    seed: int = field_of(PlannerConfig, "seed")
    smoothing_degree: int = field_of(PlannerConfig, "smoothing_degree", default=3)
    controller_mode: ControllerMode = Field(
        "joint_trajectory", description="What is sent to ros2_kortex: joint_trajectory "
        "(/joint_trajectory_controller/joint_trajectory: the checked joint path itself, the default), twist "
        "(/twist_controller/commands), pose (PoseStamped target only; a Cartesian controller's own IK may move "
        "the elbow off the checked path, so the whole-arm clearance is not guaranteed).")
    base_frame: str = Field("base_link", min_length=1, description="Planning frame (REP-103); goals and obstacles must use it.")
    joint_prefix: str = Field("", description="Prefix of the Gen3 joint names (ros2_kortex 'prefix' launch arg).")
    stale_joint_state_timeout_s: float = Field(
        0.5, gt=0.0, le=10.0, description="Joint states older than this make the node hold, s (0..10].")
    stamp_future_tolerance_s: float = Field(
        0.05, ge=0.0, le=5.0, description="Joint states stamped further than this in the future are refused, s "
        "(clock skew allowance; a zero stamp falls back to reception time).")
    joint_limit_tolerance_rad: float = Field(
        0.02, ge=0.0, le=0.2, description="Joint states beyond the URDF position limits by more than this are refused, "
        "rad (continuous joints: beyond [-pi, pi]).")
    max_obstacles: int = Field(
        16, ge=1, le=64, description="Obstacles planned against per decision (the ones nearest the arm and the goal "
        "are kept, the rest counted in /diagnostics); bounds the decision's cost (1..64).")
    max_obstacle_array: int = Field(
        256, ge=1, le=4096, description="Obstacle arrays with more entries are refused before being deserialized "
        "and the previous set is kept (1..4096).")
    max_goal_rate_hz: float = Field(
        20.0, ge=0.1, le=1000.0, description="SetGoal requests beyond a burst of 5 and faster than this are refused (each solves IK), Hz; "
        "/goal_pose is read at most once per control cycle, the latest wins.")
    goal_tolerance_m: float = Field(0.01, gt=0.0, le=0.5, description="Default goal position tolerance, m (0..0.5].")
    workspace_radius_m: float = Field(
        0.9, gt=0.1, le=1.2, description="Goals farther than this from the shoulder (joint_2) are unreachable, m.")
    safety_margin_m: float = field_of(GeometricScoreConfig, "safety_margin_m")
    limit_projection_rad: float = field_of(GeometricScoreConfig, "limit_projection_rad")
    goal_snap_rad: float = field_of(GeometricScoreConfig, "goal_snap_rad")
    clearance_saturation_m: float = field_of(GeometricScoreConfig, "clearance_saturation_m")
    w_clearance: float = field_of(GeometricScoreConfig, "w_clearance")
    w_effort: float = field_of(
        GeometricScoreConfig, "w_effort", default=1.0,
        description=GeometricScoreConfig.model_fields["w_effort"].description + " Node default 1.0: measured to "
        "reach goals ~10x sooner than 0.05 in closed loop with the arm primitive model.")
    w_progress: float = field_of(
        GeometricScoreConfig, "w_progress", default=100.0,
        description=GeometricScoreConfig.model_fields["w_progress"].description + " Node default 100: with 10 the "
        "summed clearance reward outweighs the last centimetres to a goal near an obstacle, and the distilled "
        "student settled 2-9 cm short (reports/arm_distill_rel).")
    max_linear_speed: float = Field(0.5, gt=0.0, le=0.5, description="Twist clamp, m/s (Gen3 twist_limits.yaml: 0.5).")
    max_linear_accel: float = Field(0.4, gt=0.0, le=0.4, description="Twist rate clamp, m/s^2 (Gen3 twist_limits.yaml: 0.4).")
    max_angular_speed: float = Field(1.74, gt=0.0, le=1.74, description="Twist clamp, rad/s (Gen3 twist_limits.yaml: 1.74).")
    max_angular_accel: float = Field(
        0.4, gt=0.0, le=0.4, description="Angular twist rate clamp, rad/s^2 (Gen3 twist_limits.yaml: 0.4).")
    twist_angular_unit: AngularUnit = Field(
        "deg_per_s", description="Unit of Twist.angular on the wire: deg_per_s, as kortex_driver reads it on the real "
        "Gen3 (it passes the value unconverted to the Kortex API, which takes deg/s), or rad_per_s (REP-103).")
    twist_watchdog_s: float = Field(
        0.15, gt=0.0, le=2.0, description="Twist mode: a zero twist is sent when no command went out for this long, s "
        "(the real twist_controller has no timeout and keeps the last twist).")
    settle_time_s: float = Field(
        0.3, ge=0.0, le=5.0, description="GOAL_REACHED needs the end effector inside the tolerance and slower than "
        "settle_speed_mps for this long, s.")
    settle_speed_mps: float = Field(0.01, gt=0.0, le=0.5, description="End-effector speed counted as at rest, m/s.")
    marker_rate_hz: float = Field(2.0, ge=0.0, le=20.0, description="Candidate MarkerArray rate for RViz, Hz (0 = off).")
    publish_decisions: bool = Field(
        True, description="Publish every decision with its inputs on /dnk/decision (dnk_msgs/PlannerDecision, "
        "about 2 kB each) so a recorded bag can be replayed bit for bit by dnk-replay.")

    @model_validator(mode="after")
    def _deadline_default(self) -> "NodeConfig":
        if self.decision_deadline_ms == 0.0:
            object.__setattr__(self, "decision_deadline_ms", 1000.0 / self.rate_hz)
        return self

    @property
    def period_s(self) -> float:
        return 1.0 / self.rate_hz

    @property
    def joint_names(self) -> list[str]:
        return [f"{self.joint_prefix}{name}" for name in JOINT_NAMES]

    def planner_config(self, manifest: ModelManifest) -> PlannerConfig:
        """The core planner's settings from these parameters; temperature -1 takes `manifest`'s."""
        values = {k: getattr(self, k) for k in PlannerConfig.model_fields}
        if self.temperature < 0.0:
            values.pop("temperature")
            if manifest.prior_temperature is not None:
                values["temperature"] = manifest.prior_temperature
        return PlannerConfig(**values)

    def score_config(self, row_period_s: float | None = None) -> GeometricScoreConfig:
        """The geometric selector's settings; waypoints are `row_period_s` apart (the model's, default
        one control period)."""
        fields = set(GeometricScoreConfig.model_fields) - {"dt"}
        return GeometricScoreConfig(dt=row_period_s or self.period_s, **{k: getattr(self, k) for k in fields})
