"""Planner core end to end with the analytic arm student (a real ONNX model in tmp_path)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dnk_planner.testing.models import build_arm_primitive_model
from dnk_planner.core.config import GeometricScoreConfig, PlannerConfig
from dnk_planner.core import Context, Planner
from dnk_planner.core.geometry import ObstacleSet
from dnk_planner.core.manifest import load_model
from dnk_planner.core.selectors import GeometricSelector

pytest.importorskip("onnx")  # the models under test are written with onnx (dev dependency)

EE = np.array([0.5, -0.3, 0.3])
GOAL = np.array([0.5, 0.3, 0.3])
ON_THE_LINE = ObstacleSet.from_shapes(spheres=[("ball", (0.5, -0.1, 0.3), 0.06)])
MARGIN = 0.03


@pytest.fixture(scope="module")
def arm_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("arm") / "arm.onnx"
    build_arm_primitive_model(path)
    return path


def make_planner(arm_path: Path, seed: int = 0, n: int = 64) -> Planner:
    return Planner(load_model(arm_path, provider="cpu"),
                   GeometricSelector(GeometricScoreConfig(safety_margin_m=MARGIN)),
                   PlannerConfig(num_candidates=n, seed=seed))


def test_fixed_entries_exact_and_decision_shapes(arm_path: Path) -> None:
    d = make_planner(arm_path).plan(Context({"ee_position": EE, "goal": GOAL}, ON_THE_LINE))
    assert d.candidates.shape == (64, 32, 6) and d.scores.shape == (64,) and d.trajectory.shape == (32, 6)
    np.testing.assert_array_equal(d.candidates[:, 0, :3], np.broadcast_to(EE.astype(np.float32), (64, 3)))
    np.testing.assert_array_equal(d.candidates[:, :, 3:], np.broadcast_to(GOAL.astype(np.float32), (64, 32, 3)))
    assert d.feasible
    np.testing.assert_array_equal(d.trajectory, d.candidates[d.best_index])
    np.testing.assert_array_equal(d.action, d.trajectory[1, :3])
    assert d.scores[d.best_index] == d.scores.max()
    assert set(d.timing) == {"prior_ms", "inference_ms", "scoring_ms", "total_ms"}
    assert all(v >= 0 for v in d.timing.values())
    assert d.timing["total_ms"] >= d.timing["inference_ms"] + d.timing["scoring_ms"]


def test_best_candidate_avoids_obstacle_on_the_straight_line(arm_path: Path) -> None:
    straight = EE + np.linspace(0, 1, 50)[:, None] * (GOAL - EE)
    assert ON_THE_LINE.signed_distance(straight).min() < 0  # the ball sits on the straight line
    d = make_planner(arm_path).plan(Context({"ee_position": EE, "goal": GOAL}, ON_THE_LINE))
    clearance = ON_THE_LINE.signed_distance(d.candidates[:, 1:, :3]).min(axis=(1, 2))
    rejected = np.isneginf(d.scores)
    assert rejected.any() and not rejected.all()
    np.testing.assert_array_equal(rejected, clearance < MARGIN)  # rejected exactly those inside the margin
    assert clearance[d.best_index] >= MARGIN


def test_closed_loop_reaches_goal_without_entering_margin(arm_path: Path) -> None:
    planner = make_planner(arm_path)
    x, closest = EE.copy(), np.inf
    for _ in range(200):
        d = planner.plan(Context({"ee_position": x, "goal": GOAL}, ON_THE_LINE))
        assert d.feasible
        x = d.action.astype(np.float64)
        closest = min(closest, float(ON_THE_LINE.signed_distance(x[None]).min()))
        if np.linalg.norm(x - GOAL) < 0.005:
            break
    assert np.linalg.norm(x - GOAL) < 0.005
    assert closest >= MARGIN


def test_all_rejected_holds_current_position(arm_path: Path) -> None:
    cage = ObstacleSet.from_shapes(spheres=[("cage", tuple(EE), 0.8)])  # every planned point is inside
    d = make_planner(arm_path).plan(Context({"ee_position": EE, "goal": GOAL}, cage))
    assert not d.feasible and d.best_index == -1 and np.all(np.isneginf(d.scores))
    np.testing.assert_array_equal(d.action, EE.astype(np.float32))
    np.testing.assert_array_equal(d.trajectory[:, :3], np.broadcast_to(EE.astype(np.float32), (32, 3)))
    np.testing.assert_array_equal(d.trajectory[:, 3:], np.broadcast_to(GOAL.astype(np.float32), (32, 3)))


def test_same_seed_same_decisions_other_seed_differs(arm_path: Path) -> None:
    a, b, c = make_planner(arm_path, 5), make_planner(arm_path, 5), make_planner(arm_path, 6)
    ctx = Context({"ee_position": EE, "goal": GOAL}, ON_THE_LINE)
    for _ in range(3):
        da, db, dc = a.plan(ctx), b.plan(ctx), c.plan(ctx)
        assert da.candidates.tobytes() == db.candidates.tobytes() and da.best_index == db.best_index
        assert not np.array_equal(da.candidates, dc.candidates)


def test_decision_not_changed_by_next_plan(arm_path: Path) -> None:
    planner = make_planner(arm_path)
    first = planner.plan(Context({"ee_position": EE, "goal": GOAL}))
    snapshot = first.candidates.copy()
    planner.plan(Context({"ee_position": GOAL, "goal": EE}))
    np.testing.assert_array_equal(first.candidates, snapshot)


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"goal": GOAL}, "'ee_position' is missing"),
        ({"ee_position": EE[:2], "goal": GOAL}, "'ee_position' has shape"),
        ({"ee_position": EE, "goal": np.array([0.1, np.nan, 0.2])}, "'goal' contains NaN"),
    ],
)
def test_bad_context_names_the_key(arm_path: Path, values: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_planner(arm_path, n=4).plan(Context(values))


def test_bad_obstacles_and_wrong_role(arm_path: Path) -> None:
    planner = make_planner(arm_path, n=4)
    with pytest.raises(ValueError, match="Context.obstacles"):
        planner.plan(Context({"ee_position": EE, "goal": GOAL}, obstacles=[("ball", EE, 0.1)]))
    student = load_model(arm_path, provider="cpu")
    critic_like = student.manifest.model_copy(update={"role": "critic"})
    student.manifest = critic_like
    with pytest.raises(ValueError, match="role 'critic'"):
        Planner(student, GeometricSelector())


def test_from_files_defaults_to_geometric_for_arm(arm_path: Path) -> None:
    planner = Planner.from_files(arm_path.with_suffix(".json"), config=PlannerConfig(provider="cpu", num_candidates=8))
    assert isinstance(planner.selector, GeometricSelector)
    assert planner.plan(Context({"ee_position": EE, "goal": GOAL})).feasible


def test_prefetch_does_not_change_decisions(arm_path: Path) -> None:
    plain, early = make_planner(arm_path, 9), make_planner(arm_path, 9)
    ctx = Context({"ee_position": EE, "goal": GOAL}, ON_THE_LINE)
    for _ in range(3):
        early.prefetch()
        a, b = plain.plan(ctx), early.plan(ctx)
        assert a.candidates.tobytes() == b.candidates.tobytes() and a.best_index == b.best_index


def test_student_emitting_nan_yields_hold_not_crash(tmp_path: Path) -> None:
    from onnx import TensorProto, helper, numpy_helper
    from planner_testing import arm_manifest, save_graph

    from dnk_planner.core.manifest import save_manifest

    path = save_graph(
        tmp_path / "nan.onnx", [helper.make_node("Mul", ["prior", "nan"], ["trajectory"])],
        [helper.make_tensor_value_info("prior", TensorProto.FLOAT, ["b", 32, 6])],
        [helper.make_tensor_value_info("trajectory", TensorProto.FLOAT, ["b", 32, 6])],
        [numpy_helper.from_array(np.array(np.nan, np.float32), "nan")],
    )
    save_manifest(arm_manifest(path, 32), path)
    d = make_planner(path, n=8).plan(Context({"ee_position": EE, "goal": GOAL}, ON_THE_LINE))
    assert not d.feasible and d.best_index == -1
    np.testing.assert_array_equal(d.action, EE.astype(np.float32))
    assert np.all(np.isfinite(d.trajectory))
