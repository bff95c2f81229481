"""ArmSim (the numpy model behind sim_gen3) and its configuration, without DDS."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from dnk_bringup.arm_sim import ArmSim
from dnk_bringup.sim_gen3_config import SimGen3Config, load_joint_limits
from dnk_planner.core.kinematics import forward_kinematics

LIMITS = Path(__file__).resolve().parents[1] / "config" / "joint_limits.yaml"
DT = 0.01


def make_sim(**overrides) -> ArmSim:
    v_max, a_max = load_joint_limits(LIMITS)
    return ArmSim(SimGen3Config(**overrides), v_max, a_max)


def run(sim: ArmSim, seconds: float, t0: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Step for `seconds`; returns the joint positions and velocities of every step."""
    qs, qds = [], []
    for k in range(int(round(seconds / DT))):
        sim.step(DT, t0 + (k + 1) * DT)
        qs.append(sim.q.copy())
        qds.append(sim.qd.copy())
    return np.array(qs), np.array(qds)


def test_joint_limits_file_matches_the_gen3_reference() -> None:
    v_max, a_max = load_joint_limits(LIMITS)
    np.testing.assert_allclose(v_max, [1.3963] * 4 + [1.2218] * 3)  # URDF = MoveIt config, what ros2_kortex enforces
    np.testing.assert_allclose(a_max, [8.6] * 7)


def test_joint_limits_file_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "limits.yaml"
    bad.write_text("joint_limits:\n  joint_1: {max_velocity: 1.0, max_acceleration: 1.0}\n")
    with pytest.raises(ValueError, match="joint_2"):
        load_joint_limits(bad)
    with pytest.raises(ValueError, match="joint_limits_file"):
        load_joint_limits(tmp_path / "missing.yaml")


def test_config_rejects_out_of_range_values() -> None:
    with pytest.raises(ValidationError, match="initial_positions"):
        SimGen3Config(initial_positions=[0.0] * 6)
    with pytest.raises(ValidationError, match="max_pose_speed"):
        SimGen3Config(max_pose_speed=0.8)  # above the Gen3's 0.5 m/s


def test_trajectory_respects_velocity_and_acceleration_limits() -> None:
    sim = make_sim()
    goal = sim.q + np.array([1.0, -0.5, 0.5, 0.5, -1.0, 0.5, 1.0])
    sim.set_trajectory(0.0, 0.0, np.array([0.3]), goal[None])  # asks for 3.3 rad/s: infeasible
    qs, qds = run(sim, 5.0)
    assert np.all(np.abs(qds) <= sim.v_max + 1e-9)
    acc = np.abs(np.diff(qds, axis=0)) / DT
    assert np.all(acc <= sim.a_max + 1e-6)
    np.testing.assert_allclose(qs[-1], goal, atol=1e-4)


def test_future_start_holds_and_empty_trajectory_stops() -> None:
    sim = make_sim()
    q0 = sim.q.copy()
    sim.set_trajectory(0.0, 1.0, np.array([1.0]), (q0 + 0.3)[None])  # starts at t = 1 s
    qs, _ = run(sim, 0.9)
    np.testing.assert_allclose(qs[-1], q0, atol=1e-9)
    run(sim, 1.0, t0=0.9)
    assert np.abs(sim.q - q0).max() > 0.1
    sim.set_trajectory(1.9, 0.0, np.array([]), np.zeros((0, 7)))
    _, qds = run(sim, 2.0, t0=1.9)
    assert np.abs(qds[-1]).max() < 1e-6


def test_position_limits_stop_the_joint() -> None:
    sim = make_sim()
    target = sim.q.copy()
    target[1] = 3.0  # joint_2 is limited to +-2.24 rad
    sim.set_trajectory(0.0, 0.0, np.array([1.0]), target[None])
    qs, _ = run(sim, 6.0)
    assert qs[:, 1].max() <= 2.24 + 1e-12
    assert qs[-1, 1] == pytest.approx(2.24)


def test_pose_target_speed_cap_and_orientation() -> None:
    # Fast joints so the 0.5 m/s Cartesian cap (not the joint limits) is what binds.
    v_max, a_max = load_joint_limits(LIMITS)
    sim = ArmSim(SimGen3Config(max_linear_accel=10.0), 10 * v_max, 10 * a_max)
    start = forward_kinematics(sim.q)
    target = start[:3, 3] + np.array([0.0, 0.4, -0.1])
    sim.set_pose_target(target, None)  # None: keep the current orientation
    qs, _ = run(sim, 3.0)
    ee = forward_kinematics(qs)[:, :3, 3]
    speeds = np.linalg.norm(np.diff(ee, axis=0), axis=1) / DT
    assert speeds.max() <= 0.5 + 1e-3 and speeds.max() > 0.45
    assert np.linalg.norm(ee[-1] - target) < 1e-4
    np.testing.assert_allclose(forward_kinematics(qs[-1])[:3, :3], start[:3, :3], atol=1e-4)


@pytest.mark.parametrize("frame", ["tool", "base"])
def test_twist_frame(frame: str) -> None:
    sim = make_sim(twist_frame=frame, twist_timeout_s=0.0)
    start = forward_kinematics(sim.q)
    sim.set_twist(0.0, np.array([0.0, 0.0, 0.05]), np.zeros(3))
    run(sim, 1.0)
    moved = forward_kinematics(sim.q)[:3, 3] - start[:3, 3]
    axis = start[:3, 2] if frame == "tool" else np.array([0.0, 0.0, 1.0])
    assert moved @ axis > 0.03
    assert np.linalg.norm(moved - (moved @ axis) * axis) < 2e-3
