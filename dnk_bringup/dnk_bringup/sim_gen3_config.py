"""Configuration of the simulated Gen3 (node `sim_gen3`) and its joint_limits.yaml loader.

Limits default to the Gen3 numbers in ../shared/reference/kinova_gen3.md: twist limits
from ros2_kortex's twist_limits.yaml, joint velocity/acceleration limits from the MoveIt
joint_limits.yaml (shipped here as config/joint_limits.yaml in the same format).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from dnk_planner.ros.topics import TARGET_POSE
from dnk_planner.core.kinematics import HOME_POSITIONS, JOINT_LOWER, JOINT_NAMES, JOINT_UPPER, NUM_JOINTS


class SimGen3Config(BaseModel):
    """ROS parameters of `sim_gen3` (all read-only: restart the node to change them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rate_hz: float = Field(100.0, ge=1.0, le=1000.0,
                           description="Simulation step and /joint_states publish rate, Hz (1..1000).")
    joint_prefix: str = Field("", description="Prefix of the joint names, as ros2_kortex's 'prefix' launch arg.")
    initial_positions: list[float] = Field(
        default_factory=lambda: list(HOME_POSITIONS),
        description="Start configuration joint_1..joint_7, rad (7 values within the position limits).")
    joint_limits_file: str = Field(
        "", description="MoveIt-format joint_limits.yaml with max_velocity (rad/s) and max_acceleration "
        "(rad/s^2) per joint; '' = this package's config/joint_limits.yaml.")
    command_mode: Literal["all", "pose", "twist", "joint_trajectory"] = Field(
        "all", description="Which command inputs are live, like the one active ros2_kortex controller: pose "
        "(pose_target_topic), twist (/twist_controller/commands), joint_trajectory "
        "(/joint_trajectory_controller/joint_trajectory) or all (the latest message wins). Use the "
        "planner's controller_mode: it publishes pose targets in every mode.")
    base_frame: str = Field("base_link", min_length=1,
                            description="Frame of pose targets; targets in another frame are dropped.")
    pose_target_topic: str = Field(TARGET_POSE, min_length=2,
                                   description="geometry_msgs/PoseStamped Cartesian target topic (the planner's).")
    pose_tracks_orientation: bool = Field(
        True, description="Pose targets also set the end-effector orientation (false: keep the current one).")
    max_pose_speed: float = Field(0.5, gt=0.0, le=0.5,
                                  description="End-effector speed towards a pose target, m/s (<= 0.5).")
    max_linear_speed: float = Field(0.5, gt=0.0, le=0.5, description="Twist clamp, m/s (twist_limits.yaml: 0.5).")
    max_angular_speed: float = Field(1.74, gt=0.0, le=1.74,
                                     description="Twist clamp, rad/s (twist_limits.yaml: 1.74).")
    max_linear_accel: float = Field(0.4, gt=0.0, le=10.0,
                                    description="Twist rate limit, m/s^2 (twist_limits.yaml: 0.4).")
    max_angular_accel: float = Field(0.4, gt=0.0, le=10.0,
                                     description="Twist rate limit, rad/s^2 (twist_limits.yaml: 0.4).")
    twist_frame: Literal["tool", "base"] = Field(
        "tool", description="Frame of /twist_controller/commands: tool (as ros2_kortex's twist_controller) or base.")
    twist_timeout_s: float = Field(
        0.0, ge=0.0, le=10.0,
        description="Without a new Twist for this long the commanded twist decays to zero, s (0 = never, like "
        "ros2_kortex's twist_controller, which keeps applying the last twist).")
    twist_angular_unit: Literal["deg_per_s", "rad_per_s"] = Field(
        "deg_per_s", description="Unit of Twist.angular: deg_per_s as kortex_driver reads it, or rad_per_s.")
    description_path: str = Field(
        "", description="Folder with Kinova's gen3.urdf and meshes/ (an expanded kortex_description; tests use "
        "../shared/reference/kortex_gen3). '' = share/kortex_description/robots/gen3.urdf when installed, else a "
        "model of the same chain with the fitted collision spheres.")
    contacts_rate_hz: float = Field(20.0, gt=0.0, le=100.0,
                                    description="Rate of dnk_msgs/ArmContacts on /sim_gen3/contacts, Hz.")
    tracking_gain: float = Field(10.0, gt=0.0, le=100.0,
                                 description="Joint position error gain while following a trajectory, 1/s.")
    warn_throttle_s: float = Field(2.0, ge=0.0, le=60.0,
                                   description="Minimum time between two warnings about dropped messages, s.")

    @field_validator("initial_positions")
    @classmethod
    def _initial_positions(cls, q: list[float]) -> list[float]:
        if len(q) != NUM_JOINTS or not all(math.isfinite(v) for v in q):
            raise ValueError(f"needs {NUM_JOINTS} finite joint angles in rad, got {q}")
        bad = [i + 1 for i, v in enumerate(q) if not JOINT_LOWER[i] <= v <= JOINT_UPPER[i]]
        if bad:
            raise ValueError(f"joint(s) {bad} outside the Gen3 position limits "
                             f"{list(zip(JOINT_LOWER.tolist(), JOINT_UPPER.tolist()))} rad")
        return q

    @property
    def joint_names(self) -> list[str]:
        return [f"{self.joint_prefix}{name}" for name in JOINT_NAMES]


class JointLimit(BaseModel):
    """One joint's entry in a MoveIt joint_limits.yaml (extra keys such as has_jerk_limits are ignored)."""

    has_velocity_limits: bool = True
    max_velocity: float = Field(gt=0.0, le=10.0, description="rad/s")
    has_acceleration_limits: bool = True
    max_acceleration: float = Field(gt=0.0, le=100.0, description="rad/s^2")


class JointLimitsFile(BaseModel):
    joint_limits: dict[str, JointLimit]


def load_joint_limits(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(max_velocity (7,), max_acceleration (7,)) for joint_1..joint_7 from a joint_limits.yaml.

    Keys may carry a prefix ('left_joint_1'); the sim needs finite limits for every joint.
    """
    path = Path(path)
    try:
        parsed = JointLimitsFile.model_validate(yaml.safe_load(path.read_text()))
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise ValueError(f"joint_limits_file {path}: {exc}. Fix: point -p joint_limits_file:=... at a "
                         "MoveIt joint_limits.yaml (joint_limits: joint_1: {max_velocity: .., "
                         "max_acceleration: ..})") from exc
    vel, acc = np.zeros(NUM_JOINTS), np.zeros(NUM_JOINTS)
    for i in range(NUM_JOINTS):
        suffix = f"joint_{i + 1}"
        entries = [v for k, v in parsed.joint_limits.items() if k == suffix or k.endswith("_" + suffix)]
        if len(entries) != 1 or not (entries[0].has_velocity_limits and entries[0].has_acceleration_limits):
            raise ValueError(f"joint_limits_file {path}: needs exactly one entry for {suffix} with "
                             "has_velocity_limits and has_acceleration_limits true")
        vel[i], acc[i] = entries[0].max_velocity, entries[0].max_acceleration
    return vel, acc
