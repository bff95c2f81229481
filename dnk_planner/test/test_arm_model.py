"""The analytic arm student and the FDK-sized model: real ONNX graphs that honour the contract."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from dnk_planner.testing.models import ARM_MODEL_ID, build_arm_primitive_model, build_fdk_sized_model, smooth_basis
from dnk_planner.core.manifest import load_model, sha256_file
from dnk_planner.core.normalizer import Normalizer
from dnk_planner.core.priors import PriorBuilder

pytest.importorskip("onnx")  # the models under test are written with onnx (dev dependency)

EE = np.array([0.3, -0.2, 0.4], np.float32)


def run_raw(model, prior: np.ndarray) -> np.ndarray:
    norm = Normalizer.from_manifest(model.manifest)
    return norm.denormalize(model.run(prior=prior)["trajectory"])


def test_manifest_identity_and_contract(tmp_path: Path) -> None:
    m = build_arm_primitive_model(tmp_path / "arm.onnx", horizon=16)
    model = load_model(tmp_path / "arm.json", provider="cpu")  # full contract check against the file
    assert model.manifest == m
    assert (m.model_id, m.role, m.task, m.horizon) == (ARM_MODEL_ID, "student", "arm", 16)
    assert m.provenance["method"] == "analytic motion primitives (not distilled)"
    assert [(c.name, c.dim) for c in m.columns] == [("ee_position", 3), ("goal", 3)]
    assert (m.action.column, m.action.row) == ("ee_position", 1)


@pytest.mark.parametrize("goal", [np.array([0.3, 0.3, 0.4]), np.array([0.32, -0.19, 0.41])])
def test_zero_noise_is_speed_capped_straight_line(tmp_path: Path, goal: np.ndarray) -> None:
    build_arm_primitive_model(tmp_path / "arm.onnx", dt=0.05, max_speed=0.2)
    model = load_model(tmp_path / "arm.onnx", provider="cpu")
    prior = PriorBuilder(model.manifest, 2, seed=0, temperature=0.0).build({"ee_position": EE, "goal": goal})
    x = run_raw(model, prior)
    dist = np.linalg.norm(goal - EE)
    frac = np.minimum(1.0, np.arange(32) * 0.2 * 0.05 / dist)[:, None]
    np.testing.assert_allclose(x[0, :, :3], EE + frac * (goal - EE), atol=1e-5)
    np.testing.assert_allclose(x[:, :, 3:], np.broadcast_to(goal, (2, 32, 3)), atol=1e-5)
    assert np.linalg.norm(np.diff(x[0, :, :3], axis=0), axis=-1).max() <= 0.2 * 0.05 + 1e-5


def test_noise_gives_diverse_smooth_detours_starting_at_ee(tmp_path: Path) -> None:
    build_arm_primitive_model(tmp_path / "arm.onnx")
    model = load_model(tmp_path / "arm.onnx", provider="cpu")
    goal = np.array([0.3, 0.4, 0.4], np.float32)
    ctx = {"ee_position": EE, "goal": goal}
    x = run_raw(model, PriorBuilder(model.manifest, 64, seed=1, temperature=0.5).build(ctx))[:, :, :3]
    line = run_raw(model, PriorBuilder(model.manifest, 1, seed=1, temperature=0.0).build(ctx))[0, :, :3]
    np.testing.assert_allclose(x[:, 0], np.broadcast_to(EE, (64, 3)), atol=1e-5)
    assert x[:, -1].std(axis=0).min() > 0.03  # candidates end in clearly different places
    # every detour lies in the span of the 4 smooth modes (least-squares residual ~ 0)
    basis = smooth_basis(32, 4)
    detour = (x - line).transpose(1, 0, 2).reshape(32, -1)
    coef, *_ = np.linalg.lstsq(basis, detour, rcond=None)
    assert np.abs(basis @ coef - detour).max() < 1e-5
    assert np.abs(detour).max() > 0.05


def test_detours_taper_near_goal(tmp_path: Path) -> None:
    build_arm_primitive_model(tmp_path / "arm.onnx", taper_distance=0.1)
    model = load_model(tmp_path / "arm.onnx", provider="cpu")
    builder = PriorBuilder(model.manifest, 64, seed=2, temperature=0.5)
    far = run_raw(model, builder.build({"ee_position": EE, "goal": EE + [0.0, 0.5, 0.0]}))[:, :, :3]
    builder = PriorBuilder(model.manifest, 64, seed=2, temperature=0.5)  # same noise
    near = run_raw(model, builder.build({"ee_position": EE, "goal": EE + [0.0, 0.01, 0.0]}))[:, :, :3]
    far_dev = np.abs(far[:, :, [0, 2]] - EE[[0, 2]]).max()
    near_dev = np.abs(near[:, :, [0, 2]] - EE[[0, 2]]).max()
    assert near_dev == pytest.approx(0.1 * far_dev, rel=1e-3)  # taper = 0.01 m / 0.1 m


def test_basis_is_zero_at_current_position() -> None:
    b = smooth_basis(32, 4)
    assert b.shape == (32, 4) and np.all(b[0] == 0.0) and np.all(np.abs(b[-1]) > 0.1)


def test_fdk_sized_model_contract_mask_and_seed(tmp_path: Path) -> None:
    m = build_fdk_sized_model(tmp_path / "a.onnx", horizon=32, dim=6, latent=128, rank=32, seed=0)
    build_fdk_sized_model(tmp_path / "b.onnx", horizon=32, dim=6, latent=128, rank=32, seed=0)
    build_fdk_sized_model(tmp_path / "c.onnx", horizon=32, dim=6, latent=128, rank=32, seed=1)
    assert sha256_file(tmp_path / "a.onnx") == sha256_file(tmp_path / "b.onnx") != sha256_file(tmp_path / "c.onnx")
    model = load_model(tmp_path / "a.onnx", provider="cpu")
    assert model.manifest == m and m.model_id == "fdk-sized-m128-r32"
    prior = np.random.default_rng(0).standard_normal((64, 32, 6)).astype(np.float32)
    y = model.run(prior=prior)["trajectory"]
    np.testing.assert_array_equal(y[:, 0, :3], prior[:, 0, :3])
    np.testing.assert_array_equal(y[:, :, 3:], prior[:, :, 3:])
    assert not np.allclose(y[:, 1:, :3], prior[:, 1:, :3])
    with pytest.raises(ValueError, match="rank"):
        build_fdk_sized_model(tmp_path / "d.onnx", latent=16, rank=32)


def test_missing_onnx_package_is_explained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)  # makes `import onnx` raise ImportError
    with pytest.raises(ImportError, match="pip install onnx"):
        build_arm_primitive_model(tmp_path / "arm.onnx")
