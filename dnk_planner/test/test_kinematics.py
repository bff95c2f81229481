"""Gen3 FK against poses computed by hand from kinova_gen3.md; IK round trips within 1 mm."""

from __future__ import annotations

import numpy as np
import pytest

from dnk_planner.core.kinematics import (
    JOINT_LOWER, JOINT_UPPER, SHOULDER_POSITION, forward_kinematics, inverse_kinematics, jacobian, link_frames,
    link_origins, solve_ik,
)

# Zero configuration by hand: every rpy is a multiple of pi/2 about x, so each origin offset
# (0, a, b) maps to (0, +-a or +-b): see the derivation in the chain table.
Z_SHOULDER = 0.15643 + 0.12838
HAND_ZERO_ORIGINS = np.array([
    [0.0, 0.0, 0.0],
    [0.0, 0.0, 0.15643],
    [0.0, -0.005375, Z_SHOULDER],
    [0.0, -0.005375 - 0.006375, Z_SHOULDER + 0.21038],
    [0.0, -0.005375 - 2 * 0.006375, Z_SHOULDER + 2 * 0.21038],
    [0.0, -0.005375 - 3 * 0.006375, Z_SHOULDER + 2 * 0.21038 + 0.20843],
    [0.0, -0.005375 - 3 * 0.006375 - 0.00017505, Z_SHOULDER + 2 * 0.21038 + 0.20843 + 0.10593],
    [0.0, -0.005375 - 3 * 0.006375 - 2 * 0.00017505, Z_SHOULDER + 2 * 0.21038 + 0.20843 + 2 * 0.10593],
    [0.0, -0.005375 - 3 * 0.006375 - 2 * 0.00017505, Z_SHOULDER + 2 * 0.21038 + 0.20843 + 2 * 0.10593 + 0.061525],
])
TOL = 1e-4  # the table's rpy are rounded (3.1416, 1.5708): ~1e-5 m of drift over the chain


def random_q(rng: np.random.Generator, n: int) -> np.ndarray:
    lim = np.where(np.isfinite(JOINT_UPPER), JOINT_UPPER, np.pi) * 0.9
    return rng.uniform(-lim, lim, (n, 7))


def test_zero_configuration_by_hand() -> None:
    np.testing.assert_allclose(link_origins(np.zeros(7)), HAND_ZERO_ORIGINS, atol=TOL)
    pose = forward_kinematics(np.zeros(7))
    np.testing.assert_allclose(pose[:3, 3], [0.0, -0.02485, 1.187385], atol=TOL)
    np.testing.assert_allclose(pose[:3, :3], np.eye(3), atol=TOL)  # Rx(pi) twice per pair -> identity


def test_joint1_and_joint2_rotations_by_hand() -> None:
    # shoulder_link is flipped (rpy pi about x), so +q1 turns the arm about -z of the base.
    q = np.zeros(7)
    q[0] = np.pi / 2
    np.testing.assert_allclose(forward_kinematics(q)[:3, 3], [-0.02485, 0.0, 1.187385], atol=TOL)
    # joint_2's axis is world +y at q = 0 (through (0, -0.005375, Z_SHOULDER)); +90 deg takes
    # the 0.902575 m column above the shoulder onto +x.
    q = np.zeros(7)
    q[1] = np.pi / 2
    np.testing.assert_allclose(forward_kinematics(q)[:3, 3], [1.187385 - Z_SHOULDER, -0.02485, Z_SHOULDER], atol=TOL)
    assert SHOULDER_POSITION[2] == pytest.approx(Z_SHOULDER)


def test_batched_matches_single() -> None:
    q = random_q(np.random.default_rng(0), 10).reshape(2, 5, 7)
    batched = forward_kinematics(q)
    assert batched.shape == (2, 5, 4, 4)
    np.testing.assert_allclose(batched[1, 3], forward_kinematics(q[1, 3]))


def test_jacobian_matches_finite_differences() -> None:
    q = random_q(np.random.default_rng(1), 1)[0]
    j = jacobian(link_frames(q))
    eps = 1e-6
    for i in range(7):
        dq = np.zeros(7)
        dq[i] = eps
        dp = (forward_kinematics(q + dq)[:3, 3] - forward_kinematics(q - dq)[:3, 3]) / (2 * eps)
        np.testing.assert_allclose(j[:3, i], dp, atol=1e-6)


def test_ik_position_round_trip_within_1mm() -> None:
    q = random_q(np.random.default_rng(2), 100)
    target = forward_kinematics(q)[:, :3, 3]
    res = solve_ik(target, np.zeros((100, 7)))
    err = np.linalg.norm(forward_kinematics(res.q)[:, :3, 3] - target, axis=-1)
    assert err.max() < 1e-3 and res.converged.all()


def test_ik_pose_round_trip_near_start() -> None:
    rng = np.random.default_rng(3)
    q = random_q(rng, 100)
    pose = forward_kinematics(q)
    res = solve_ik(pose[:, :3, 3], q + rng.normal(0.0, 0.3, q.shape), pose[:, :3, :3])
    reached = forward_kinematics(res.q)
    assert np.linalg.norm(reached[:, :3, 3] - pose[:, :3, 3], axis=-1).max() < 1e-3
    assert np.mean(res.rotation_error < 1e-2) > 0.95


def test_ik_respects_joint_limits_and_single_call_api() -> None:
    rng = np.random.default_rng(4)
    far = rng.uniform(-2.0, 2.0, (50, 3))  # many unreachable: still must stay within limits
    res = solve_ik(far, np.zeros((50, 7)), max_iterations=50)
    assert np.all(res.q >= JOINT_LOWER) and np.all(res.q <= JOINT_UPPER)
    assert not res.converged.all()
    q0 = random_q(rng, 1)[0]
    target = forward_kinematics(q0)[:3, 3] + [0.01, 0.0, 0.0]
    q = inverse_kinematics(target, q0=q0, target_rotation=forward_kinematics(q0)[:3, :3])
    assert q.shape == (7,) and np.linalg.norm(forward_kinematics(q)[:3, 3] - target) < 1e-3


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ValueError, match="expected"):
        forward_kinematics(np.zeros(6))
    with pytest.raises(ValueError, match="NaN"):
        forward_kinematics(np.full(7, np.nan))
    with pytest.raises(ValueError, match="target_position"):
        inverse_kinematics(np.zeros(2), q0=np.zeros(7))
