"""The analytic arm student and the FDK-sized model: real ONNX graphs that honour the contract."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from arm_testing import Q_HOME, ee_positions, goal_context

from dnk_planner.core.kinematics import JOINT_VELOCITY_LIMITS
from dnk_planner.core.manifest import load_model, sha256_file
from dnk_planner.core.normalizer import Normalizer
from dnk_planner.core.priors import PriorBuilder
from dnk_planner.testing.models import ARM_MODEL_ID, build_arm_primitive_model, build_fdk_sized_model, smooth_basis

pytest.importorskip("onnx")  # the models under test are written with onnx (dev dependency)

DT = 0.05


def plans(tmp_path: Path, ctx: dict, n: int, temperature: float, seed: int = 0, **model_args) -> np.ndarray:
    """Raw (n, H, 17) outputs of the analytic model for one context."""
    build_arm_primitive_model(tmp_path / "arm.onnx", dt=DT, **model_args)
    model = load_model(tmp_path / "arm.onnx", provider="cpu")
    prior = PriorBuilder(model.manifest, n, seed=seed, temperature=temperature).build(ctx)
    return Normalizer.from_manifest(model.manifest).denormalize(model.run(prior=prior)["trajectory"])


def test_manifest_identity_and_contract(tmp_path: Path) -> None:
    m = build_arm_primitive_model(tmp_path / "arm.onnx", horizon=16)
    model = load_model(tmp_path / "arm.json", provider="cpu")  # full contract check against the file
    assert model.manifest == m
    assert (m.model_id, m.role, m.task, m.horizon) == (ARM_MODEL_ID, "student", "arm", 16)
    assert m.provenance["method"] == "analytic joint-space motion primitives (not distilled)"
    assert [(c.name, c.dim) for c in m.columns] == [("q", 7), ("goal", 3), ("goal_q", 7)]
    assert (m.action.column, m.action.row) == ("q", 1)


@pytest.mark.parametrize("offset", [(0.0, 0.3, -0.1), (0.01, -0.005, 0.0)])
def test_zero_noise_moves_to_the_goal_configuration_within_limits_and_brakes(tmp_path: Path, offset) -> None:
    ctx = goal_context(offset)
    q = plans(tmp_path, ctx, 2, temperature=0.0, horizon=64)[0, :, :7].astype(float)
    np.testing.assert_allclose(q[0], Q_HOME, atol=1e-6)
    speed = np.abs(np.diff(q, axis=0)) / DT
    assert np.all(speed <= 0.5 * JOINT_VELOCITY_LIMITS * (1 + 1e-4))          # speed_fraction 0.5
    np.testing.assert_allclose(q[-1], ctx["goal_q"], atol=1e-5)              # arrives and stays
    assert np.linalg.norm(ee_positions(q[-1]) - ctx["goal"]) < 1e-3
    # straight in joint space: every row on the segment q0 -> goal_q
    share = (q - q[0]) @ (ctx["goal_q"] - q[0]) / max(np.sum((ctx["goal_q"] - q[0]) ** 2), 1e-12)
    np.testing.assert_allclose(q, q[0] + share[:, None] * (ctx["goal_q"] - q[0]), atol=1e-5)
    # it brakes into the goal: the normalized speed never rises after it starts falling
    norm_speed = (speed / JOINT_VELOCITY_LIMITS).max(axis=1)
    peak = int(np.argmax(norm_speed))
    assert np.all(np.diff(norm_speed[peak:]) <= 1e-5)
    assert norm_speed[-1] < 1e-4


def test_noise_gives_diverse_smooth_detours_starting_at_q(tmp_path: Path) -> None:
    ctx = goal_context((0.0, 0.3, -0.1))
    x = plans(tmp_path, ctx, 64, temperature=0.5)[:, :, :7]
    line = plans(tmp_path, ctx, 1, temperature=0.0)[0, :, :7]
    np.testing.assert_allclose(x[:, 0], np.broadcast_to(Q_HOME, (64, 7)), atol=1e-6)
    dev = np.abs(x - line).max(axis=(1, 2))
    assert np.median(dev) > 0.05 and np.all(dev < 1.5)  # rad: real detours, bounded
    second = np.abs(np.diff(x - line, n=2, axis=1)).max()
    assert second < 0.1 * dev.max()  # smooth: low-frequency modes only (white noise would be ~2x dev)


def test_detours_taper_near_goal(tmp_path: Path) -> None:
    near = goal_context((0.005, 0.0, 0.0))
    x = plans(tmp_path, near, 64, temperature=0.5, seed=2)[:, :, :7]
    line = plans(tmp_path, near, 1, temperature=0.0)[0, :, :7]
    far = goal_context((0.0, 0.3, -0.1))
    xf = plans(tmp_path, far, 64, temperature=0.5, seed=2)[:, :, :7]
    lf = plans(tmp_path, far, 1, temperature=0.0)[0, :, :7]
    assert np.abs(x - line).max() < 0.2 * np.abs(xf - lf).max()


def test_basis_is_zero_at_current_position() -> None:
    b = smooth_basis(32, 4)
    assert b.shape == (32, 4) and np.all(b[0] == 0.0) and np.all(np.abs(b[-1]) > 0.1)


def test_fdk_sized_model_contract_mask_and_seed(tmp_path: Path) -> None:
    m = build_fdk_sized_model(tmp_path / "a.onnx", horizon=32, latent=128, rank=32, seed=0)
    build_fdk_sized_model(tmp_path / "b.onnx", horizon=32, latent=128, rank=32, seed=0)
    build_fdk_sized_model(tmp_path / "c.onnx", horizon=32, latent=128, rank=32, seed=1)
    assert sha256_file(tmp_path / "a.onnx") == sha256_file(tmp_path / "b.onnx") != sha256_file(tmp_path / "c.onnx")
    model = load_model(tmp_path / "a.onnx", provider="cpu")
    assert model.manifest == m and m.model_id == "fdk-sized-m128-r32"
    prior = np.random.default_rng(0).standard_normal((64, 32, 17)).astype(np.float32)
    y = model.run(prior=prior)["trajectory"]
    np.testing.assert_array_equal(y[:, 0, :7], prior[:, 0, :7])      # q at row 0
    np.testing.assert_array_equal(y[:, :, 7:], prior[:, :, 7:])      # goal, goal_q everywhere
    assert not np.allclose(y[:, 1:, :7], prior[:, 1:, :7])
    with pytest.raises(ValueError, match="rank"):
        build_fdk_sized_model(tmp_path / "d.onnx", latent=16, rank=32)


def test_missing_onnx_package_is_explained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)  # makes `import onnx` raise ImportError
    with pytest.raises(ImportError, match="pip install onnx"):
        build_arm_primitive_model(tmp_path / "arm.onnx")
