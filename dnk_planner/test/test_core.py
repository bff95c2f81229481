"""Planner core end to end with the analytic arm student (a real ONNX model in tmp_path)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from arm_testing import Q_HOME, arm_clearance, ee_positions, goal_context

from dnk_planner.core import Context, Planner
from dnk_planner.core.config import GeometricScoreConfig, PlannerConfig
from dnk_planner.core.geometry import ObstacleSet
from dnk_planner.core.manifest import load_model
from dnk_planner.core.selectors import GeometricSelector
from dnk_planner.testing.models import build_arm_primitive_model

pytest.importorskip("onnx")  # the models under test are written with onnx (dev dependency)

CTX = goal_context((0.0, 0.3, -0.1))
MARGIN = 0.03


def _straight_line_ball() -> ObstacleSet:
    """A ball on the end-effector path of the straight joint-space move (so that plan is refused)."""
    q = Q_HOME + np.linspace(0, 1, 40)[:, None] * (CTX["goal_q"] - Q_HOME)
    return ObstacleSet.from_shapes(spheres=[("ball", tuple(ee_positions(q[22])), 0.05)])


ON_THE_LINE = _straight_line_ball()


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
    d = make_planner(arm_path).plan(Context(CTX, ON_THE_LINE))
    assert d.candidates.shape == (64, 32, 17) and d.scores.shape == (64,) and d.trajectory.shape == (32, 17)
    np.testing.assert_array_equal(d.candidates[:, 0, :7], np.broadcast_to(CTX["q"].astype(np.float32), (64, 7)))
    np.testing.assert_array_equal(d.candidates[:, :, 7:10], np.broadcast_to(CTX["goal"].astype(np.float32), (64, 32, 3)))
    np.testing.assert_array_equal(d.candidates[:, :, 10:], np.broadcast_to(CTX["goal_q"].astype(np.float32), (64, 32, 7)))
    assert d.feasible
    np.testing.assert_array_equal(d.trajectory, d.candidates[d.best_index])
    np.testing.assert_array_equal(d.action, d.trajectory[1, :7])
    assert d.scores[d.best_index] == d.scores.max()
    assert set(d.timing) == {"prior_ms", "inference_ms", "scoring_ms", "total_ms", "arm_ms"}
    assert all(v >= 0 for v in d.timing.values())
    assert d.timing["total_ms"] >= d.timing["inference_ms"] + d.timing["scoring_ms"]
    assert d.timing["scoring_ms"] >= d.timing["arm_ms"]


def test_best_candidate_keeps_the_whole_arm_clear(arm_path: Path) -> None:
    straight = Q_HOME + np.linspace(0, 1, 50)[:, None] * (CTX["goal_q"] - Q_HOME)
    assert arm_clearance(straight, ON_THE_LINE).min() < 0  # the straight move hits the ball
    d = make_planner(arm_path).plan(Context(CTX, ON_THE_LINE))
    clearance = arm_clearance(d.candidates[:, 1:, :7].astype(float), ON_THE_LINE).min(axis=1)
    too_close = clearance < MARGIN
    assert too_close.any() and not too_close.all()
    assert np.all(np.isneginf(d.scores[too_close]))  # every candidate inside the margin is refused
    assert clearance[d.best_index] >= MARGIN - 1e-5


def test_closed_loop_reaches_goal_with_the_arm_clear(arm_path: Path) -> None:
    planner = make_planner(arm_path)
    q, closest = CTX["q"].copy(), np.inf
    for _ in range(300):
        d = planner.plan(Context({**CTX, "q": q}, ON_THE_LINE))
        assert d.feasible
        q = d.action.astype(np.float64)
        closest = min(closest, float(arm_clearance(q, ON_THE_LINE)))
        if np.linalg.norm(ee_positions(q) - CTX["goal"]) < 0.005:
            break
    assert np.linalg.norm(ee_positions(q) - CTX["goal"]) < 0.005
    assert closest >= MARGIN - 1e-5


def test_near_the_goal_the_chosen_plan_is_bent_onto_the_goal_configuration(arm_path: Path) -> None:
    near = {**CTX, "q": CTX["goal_q"] + np.r_[0.05, -0.04, 0.0, 0.03, 0.0, 0.0, 0.0]}
    snap, off = (Planner(load_model(arm_path, provider="cpu"),
                         GeometricSelector(GeometricScoreConfig(safety_margin_m=MARGIN, goal_snap_rad=r)),
                         PlannerConfig(seed=0)) for r in (0.1, 0.0))
    d, d_off = snap.plan(Context(near)), off.plan(Context(near))
    assert d.feasible and d_off.feasible
    assert np.linalg.norm(d_off.trajectory[-1, :7] - CTX["goal_q"]) > 1e-3  # the plan alone ends beside it
    np.testing.assert_allclose(d.trajectory[-1, :7], CTX["goal_q"], atol=1e-6)
    np.testing.assert_array_equal(d.trajectory, d.candidates[d.best_index])  # the record holds the executed plan
    assert d.scores[d.best_index] == pytest.approx(snap.selector.score(d.trajectory[None].copy(), Context(near))[0])
    others = np.arange(64) != d.best_index
    np.testing.assert_array_equal(d.candidates[others], d_off.candidates[others])  # only the chosen one is bent


def test_all_rejected_holds_current_position(arm_path: Path) -> None:
    cage = ObstacleSet.from_shapes(spheres=[("cage", tuple(ee_positions(Q_HOME)), 0.8)])  # the arm is inside
    d = make_planner(arm_path).plan(Context(CTX, cage))
    assert not d.feasible and d.best_index == -1 and np.all(np.isneginf(d.scores))
    np.testing.assert_array_equal(d.action, CTX["q"].astype(np.float32))
    np.testing.assert_array_equal(d.trajectory[:, :7], np.broadcast_to(CTX["q"].astype(np.float32), (32, 7)))
    np.testing.assert_array_equal(d.trajectory[:, 7:10], np.broadcast_to(CTX["goal"].astype(np.float32), (32, 3)))


def test_same_seed_same_decisions_other_seed_differs(arm_path: Path) -> None:
    a, b, c = make_planner(arm_path, 5), make_planner(arm_path, 5), make_planner(arm_path, 6)
    ctx = Context(CTX, ON_THE_LINE)
    for _ in range(3):
        da, db, dc = a.plan(ctx), b.plan(ctx), c.plan(ctx)
        assert da.candidates.tobytes() == db.candidates.tobytes() and da.best_index == db.best_index
        assert not np.array_equal(da.candidates, dc.candidates)


def test_decision_not_changed_by_next_plan(arm_path: Path) -> None:
    planner = make_planner(arm_path)
    first = planner.plan(Context(CTX))
    snapshot = first.candidates.copy()
    planner.plan(Context({**CTX, "q": CTX["goal_q"], "goal_q": CTX["q"]}))
    np.testing.assert_array_equal(first.candidates, snapshot)


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"goal": CTX["goal"], "goal_q": CTX["goal_q"]}, "'q' is missing"),
        ({**CTX, "q": CTX["q"][:5]}, "'q' has shape"),
        ({**CTX, "goal": np.array([0.1, np.nan, 0.2])}, "'goal' contains NaN"),
    ],
)
def test_bad_context_names_the_key(arm_path: Path, values: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_planner(arm_path, n=4).plan(Context(values))


def test_bad_obstacles_and_wrong_role(arm_path: Path) -> None:
    planner = make_planner(arm_path, n=4)
    with pytest.raises(ValueError, match="Context.obstacles"):
        planner.plan(Context(CTX, obstacles=[("ball", CTX["goal"], 0.1)]))
    student = load_model(arm_path, provider="cpu")
    critic_like = student.manifest.model_copy(update={"role": "critic"})
    student.manifest = critic_like
    with pytest.raises(ValueError, match="role 'critic'"):
        Planner(student, GeometricSelector())


def test_from_files_defaults_to_geometric_for_arm(arm_path: Path) -> None:
    planner = Planner.from_files(arm_path.with_suffix(".json"), config=PlannerConfig(provider="cpu", num_candidates=8))
    assert isinstance(planner.selector, GeometricSelector)
    assert planner.plan(Context(CTX)).feasible


def test_prefetch_does_not_change_decisions(arm_path: Path) -> None:
    plain, early = make_planner(arm_path, 9), make_planner(arm_path, 9)
    ctx = Context(CTX, ON_THE_LINE)
    for _ in range(3):
        early.prefetch()
        a, b = plain.plan(ctx), early.plan(ctx)
        assert a.candidates.tobytes() == b.candidates.tobytes() and a.best_index == b.best_index


def test_student_emitting_nan_yields_hold_not_crash(tmp_path: Path, arm_path: Path) -> None:
    from onnx import TensorProto, helper, numpy_helper
    from planner_testing import save_graph

    from dnk_planner.core.manifest import read_manifest, save_manifest, sha256_file

    path = save_graph(
        tmp_path / "nan.onnx", [helper.make_node("Mul", ["prior", "nan"], ["trajectory"])],
        [helper.make_tensor_value_info("prior", TensorProto.FLOAT, ["b", 32, 17])],
        [helper.make_tensor_value_info("trajectory", TensorProto.FLOAT, ["b", 32, 17])],
        [numpy_helper.from_array(np.array(np.nan, np.float32), "nan")],
    )
    manifest = read_manifest(arm_path).model_copy(update={"model_id": "nan", "onnx_sha256": sha256_file(path)})
    save_manifest(manifest, path)
    d = make_planner(path, n=8).plan(Context(CTX, ON_THE_LINE))
    assert not d.feasible and d.best_index == -1
    np.testing.assert_array_equal(d.action, CTX["q"].astype(np.float32))
    assert np.all(np.isfinite(d.trajectory))


def test_smoothing_projection_keeps_row_0_and_cubics_and_removes_row_noise() -> None:
    from dnk_planner.core.planner import smoothing_projection

    assert smoothing_projection(32, 0) is None
    p = smoothing_projection(32, 3)
    t = np.linspace(0.0, 1.0, 32)
    cubic = 0.3 * t - 0.8 * t**2 + 0.5 * t**3          # zero at row 0, as offsets from the measured state are
    np.testing.assert_allclose(p @ cubic, cubic, atol=1e-5)
    noise = np.random.default_rng(0).normal(0.0, 0.01, 32)
    noise[0] = 0.0
    out = p @ (cubic + noise)
    assert out[0] == 0.0
    assert np.sqrt(np.mean((out - cubic) ** 2)) < 0.5 * np.sqrt(np.mean(noise**2))
