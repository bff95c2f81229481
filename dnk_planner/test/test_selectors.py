"""Selectors: geometric score terms and margin rejection; critic/classifier pick their model's max."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from planner_testing import OPSET, save_graph, write_linear_critic
from onnx import TensorProto, helper, numpy_helper

from dnk_planner.core.config import GeometricScoreConfig, PlannerConfig
from dnk_planner.core import Context, Planner
from dnk_planner.core.geometry import ObstacleSet
from dnk_planner.core.manifest import (
    ActionSpec, ColumnSpec, FixedSpec, ModelManifest, NormalizerSpec, TensorSpec, load_model, read_manifest,
    save_manifest, sha256_file,
)
from dnk_planner.core.selectors import ClassifierSelector, CriticSelector, GeometricSelector

START = np.array([0.0, 0.0, 0.0])
GOAL = np.array([1.0, 0.0, 0.0])
H = 11


def arm_candidates(*paths: np.ndarray) -> np.ndarray:
    """Stack (H, 3) paths into (N, H, 6) raw arm candidates with the goal columns filled."""
    pos = np.stack(paths).astype(np.float32)
    return np.concatenate([pos, np.broadcast_to(GOAL, pos.shape).astype(np.float32)], axis=-1)


def line(end: np.ndarray = GOAL, bump: float = 0.0) -> np.ndarray:
    t = np.linspace(0.0, 1.0, H)[:, None]
    return START + t * (end - START) + bump * np.sin(np.pi * t) * np.array([0.0, 1.0, 0.0])


def ctx(obstacles: ObstacleSet | None = None) -> Context:
    return Context({"ee_position": START, "goal": GOAL}, obstacles)


def test_candidate_through_obstacle_is_rejected_detour_is_not() -> None:
    obs = ObstacleSet.from_shapes(spheres=[("ball", (0.5, 0.0, 0.0), 0.1)])
    sel = GeometricSelector(GeometricScoreConfig(safety_margin_m=0.05))
    s = sel.score(arm_candidates(line(), line(bump=0.3)), ctx(obs))
    assert s[0] == -np.inf and np.isfinite(s[1])


def test_margin_boundary_and_row0_exempt() -> None:
    obs = ObstacleSet.from_shapes(boxes=[("wall", (0.5, 0.2, 0.0), (0, 0, 0, 1), (0.2, 0.2, 0.2))])
    sel = GeometricSelector(GeometricScoreConfig(safety_margin_m=0.05))
    # the straight line passes 0.1 m from the wall face (outside the 0.05 m margin): accepted
    near = line() + np.array([0.0, 0.06, 0.0])  # 0.04 m from the face: inside the margin
    s = sel.score(arm_candidates(line(), near), ctx(obs))
    assert np.isfinite(s[0]) and s[1] == -np.inf
    # the current position (row 0) inside the margin does not by itself reject a plan leaving it
    start_in = line()
    start_in[0] = [0.5, 0.06, 0.0]
    start_in[1] = [0.5, -0.1, 0.0]
    assert np.isfinite(sel.score(arm_candidates(start_in), ctx(obs))[0])


def test_clearance_reward_saturates() -> None:
    obs = ObstacleSet.from_shapes(spheres=[("ball", (0.5, -1.0, 0.0), 0.1)])
    cfg = GeometricScoreConfig(safety_margin_m=0.0, clearance_saturation_m=0.5, w_effort=0.0, w_progress=0.0)
    s = GeometricSelector(cfg).score(arm_candidates(line(), line() + [0, -0.7, 0], line() + [0, 2.0, 0]), ctx(obs))
    # far-away path earns the full saturated reward on the H-1 planned points; the near one less
    assert s[0] == pytest.approx(0.5 * (H - 1))
    assert s[1] < s[0]
    assert s[2] == pytest.approx(s[0])


def test_effort_penalizes_jerky_paths() -> None:
    cfg = GeometricScoreConfig(w_clearance=0.0, w_progress=0.0, w_effort=1.0, dt=0.1)
    jerky = line().copy()
    jerky[1::2, 2] += 0.05
    s = GeometricSelector(cfg).score(arm_candidates(line(), jerky), ctx())
    v = np.diff(line(), axis=0) / 0.1
    assert s[0] == pytest.approx(-np.mean(np.sum(v**2, axis=-1)), rel=1e-5)  # straight line: zero acceleration
    assert s[1] < s[0]


def test_progress_prefers_ending_closer_to_goal() -> None:
    cfg = GeometricScoreConfig(w_clearance=0.0, w_effort=0.0, w_progress=2.0)
    s = GeometricSelector(cfg).score(arm_candidates(line(), line(end=np.array([0.5, 0.0, 0.0]))), ctx())
    np.testing.assert_allclose(s, [2.0 * 1.0, 2.0 * 0.5], rtol=1e-6)


def test_geometric_needs_goal_and_ee_column(tmp_path: Path, identity_student: Path) -> None:
    with pytest.raises(ValueError, match="'goal'"):
        GeometricSelector().score(arm_candidates(line()), Context({"ee_position": START}))
    m = read_manifest(identity_student)
    bad = m.model_copy(update={"columns": [ColumnSpec(name="obs", dim=6)]})
    with pytest.raises(ValueError, match="'ee_position'"):
        GeometricSelector().bind(bad)


# --- locomotion-style student + critic / classifier --------------------------------------
LH, DS, DA = 4, 3, 2


def loco_manifest(
    path: Path, role: str, inputs: list[TensorSpec], outputs: list[TensorSpec], ds: int = DS
) -> ModelManifest:
    return ModelManifest(
        format_version=1, model_id=f"loco-{role}", role=role, task="locomotion", horizon=LH,
        columns=[ColumnSpec(name="obs", dim=ds), ColumnSpec(name="act", dim=DA)],
        fixed=[FixedSpec(column="obs", rows="first", source="obs")], action=ActionSpec(column="act", row=0),
        normalizer=NormalizerSpec(mean=[0.1] * (ds + DA), std=[2.0] * (ds + DA)), inputs=inputs, outputs=outputs,
        opset=OPSET, onnx_sha256=sha256_file(path),
    )


@pytest.fixture
def loco_student(tmp_path: Path) -> Path:
    path = save_graph(tmp_path / "loco.onnx", [helper.make_node("Identity", ["prior"], ["trajectory"])],
                      [helper.make_tensor_value_info("prior", TensorProto.FLOAT, ["b", LH, DS + DA])],
                      [helper.make_tensor_value_info("trajectory", TensorProto.FLOAT, ["b", LH, DS + DA])])
    spec = [TensorSpec(name="prior", shape=[None, LH, DS + DA])]
    save_manifest(loco_manifest(path, "student", spec, [TensorSpec(name="trajectory", shape=[None, LH, DS + DA])]),
                  path)
    return path


def test_critic_selector_picks_max_q(tmp_path: Path, loco_student: Path) -> None:
    w_obs, w_act = np.array([[0.5], [-1.0], [2.0]]), np.array([[3.0], [-2.0]])
    path = tmp_path / "critic.onnx"
    write_linear_critic(path, DS, DA, w_obs[:, 0], w_act[:, 0])
    save_manifest(loco_manifest(path, "critic", [TensorSpec(name="obs", shape=[None, DS]),
                                                 TensorSpec(name="act", shape=[None, DA])],
                                [TensorSpec(name="q", shape=[None])]), path)
    planner = Planner.from_files(loco_student, selector=path, config=PlannerConfig(num_candidates=32, seed=3))
    assert isinstance(planner.selector, CriticSelector)
    obs = np.array([0.2, -0.4, 1.0], np.float32)
    d = planner.plan(Context({"obs": obs}))
    expected_q = d.candidates[:, 0, :DS] @ w_obs[:, 0] + d.candidates[:, 0, DS:] @ w_act[:, 0]
    np.testing.assert_allclose(d.scores, expected_q, rtol=1e-5)
    assert d.best_index == int(np.argmax(expected_q)) and d.feasible
    np.testing.assert_array_equal(d.action, d.candidates[d.best_index, 0, DS:])
    np.testing.assert_array_equal(d.trajectory[0, :DS], obs)


def test_critic_with_wrong_dims_refused_at_construction(tmp_path: Path, loco_student: Path) -> None:
    path = tmp_path / "critic4.onnx"
    write_linear_critic(path, 4, DA, np.ones(4), np.ones(DA))
    man = loco_manifest(path, "critic", [TensorSpec(name="obs", shape=[None, 4]),
                                         TensorSpec(name="act", shape=[None, DA])], [TensorSpec(name="q", shape=[None])],
                        ds=4)
    save_manifest(man, path)
    with pytest.raises(ValueError, match="CriticSelector needs a column 'obs' of dim 4"):
        Planner(load_model(loco_student, provider="cpu"), CriticSelector(load_model(path, provider="cpu")))


def test_classifier_selector_scores_normalized_trajectory(tmp_path: Path, loco_student: Path) -> None:
    w = np.random.default_rng(0).standard_normal(LH * (DS + DA)).astype(np.float32)
    path = save_graph(
        tmp_path / "cls.onnx",
        [helper.make_node("Reshape", ["trajectory", "shape"], ["flat"]),
         helper.make_node("MatMul", ["flat", "w"], ["value"])],
        [helper.make_tensor_value_info("trajectory", TensorProto.FLOAT, ["b", LH, DS + DA])],
        [helper.make_tensor_value_info("value", TensorProto.FLOAT, ["b"])],
        [numpy_helper.from_array(np.array([-1, LH * (DS + DA)], np.int64), "shape"), numpy_helper.from_array(w, "w")],
    )
    spec = [TensorSpec(name="trajectory", shape=[None, LH, DS + DA])]
    save_manifest(loco_manifest(path, "classifier", spec, [TensorSpec(name="value", shape=[None])]), path)
    planner = Planner.from_files(loco_student, selector=path, config=PlannerConfig(num_candidates=16))
    assert isinstance(planner.selector, ClassifierSelector)
    d = planner.plan(Context({"obs": np.zeros(DS)}))
    expected = ((d.candidates - 0.1) / 2.0).reshape(16, -1) @ w
    np.testing.assert_allclose(d.scores, expected, rtol=1e-4, atol=1e-5)
    assert d.best_index == int(np.argmax(expected))
