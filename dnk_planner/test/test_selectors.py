"""Selectors: whole-arm geometric score terms, margin and limit rejection; critic/classifier pick their model's max."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from arm_testing import Q_HOME, arm_clearance, ee_positions, goal_context
from planner_testing import OPSET, save_graph, write_linear_critic
from onnx import TensorProto, helper, numpy_helper

from dnk_planner.core.config import GeometricScoreConfig, PlannerConfig
from dnk_planner.core import Context, Planner
from dnk_planner.core.arm_geometry import arm_sweep
from dnk_planner.core.geometry import ObstacleSet
from dnk_planner.core.manifest import (
    ActionSpec, ColumnSpec, FixedSpec, ModelManifest, NormalizerSpec, TensorSpec, load_model, read_manifest,
    save_manifest, sha256_file,
)
from dnk_planner.core.arm_geometry import SPHERE_LINK_NAMES, collision_spheres
from dnk_planner.core.kinematics import link_frames
from dnk_planner.core.selectors import ClassifierSelector, CriticSelector, GeometricSelector

H = 11
CTX = goal_context((0.0, 0.3, -0.1))
GOAL = CTX["goal"]


def arm_candidates(*q_paths: np.ndarray) -> np.ndarray:
    """Stack (H, 7) joint paths into (N, H, 17) raw arm candidates with goal and goal_q filled."""
    q = np.stack(q_paths).astype(np.float32)
    ctx_cols = np.r_[GOAL, CTX["goal_q"]].astype(np.float32)
    return np.concatenate([q, np.broadcast_to(ctx_cols, q.shape[:2] + (10,))], axis=-1)


def joint_line(end: np.ndarray | None = None, start: np.ndarray = Q_HOME, bump: float = 0.0, joint: int = 1) -> np.ndarray:
    """Straight joint path start -> end (default goal_q) in H rows, `joint` bent by `bump` rad mid-way."""
    end = CTX["goal_q"] if end is None else end
    t = np.linspace(0.0, 1.0, H)[:, None]
    return start + t * (end - start) + bump * np.sin(np.pi * t) * np.eye(7)[joint - 1]


def ctx(obstacles: ObstacleSet | None = None) -> Context:
    return Context(CTX, obstacles)


def slow(cfg: GeometricScoreConfig = GeometricScoreConfig(), **kw) -> GeometricSelector:
    """Selector with a long waypoint period, so the test paths stay inside the joint velocity limits."""
    return GeometricSelector(cfg.model_copy(update={"dt": 1.0, **kw}))


def test_wrist_through_a_sphere_is_rejected_though_the_end_effector_clears_it() -> None:
    path = joint_line()
    frames = link_frames(path)
    wrist = collision_spheres(frames)[H // 2, list(SPHERE_LINK_NAMES).index("spherical_wrist_1_link")]
    ball = ObstacleSet.from_shapes(spheres=[("ball", tuple(wrist), 0.03)])
    ee_clearance = ball.signed_distance(ee_positions(path)).min()
    assert ee_clearance > 0.05  # the end-effector path alone passes well clear of the ball
    assert arm_clearance(path, ball).min() < 0  # but the wrist goes through it
    detour = joint_line(bump=-0.8, joint=2)  # the shoulder lifts the arm over it
    assert arm_clearance(detour[1:], ball).min() > 0.03
    s = slow(safety_margin_m=0.03).score(arm_candidates(path, detour), ctx(ball))
    assert s[0] == -np.inf and np.isfinite(s[1])


def test_clearance_matches_the_reference_fk_and_margin_boundary_is_exact() -> None:
    path = joint_line()
    probe = ee_positions(path[H // 2]) + np.array([0.0, 0.0, 0.25])
    tiny = ObstacleSet.from_shapes(spheres=[("p", tuple(probe), 0.01)])
    clear = arm_clearance(path[1:], tiny).min()  # rows 1..H-1, independent of the selector's kernel
    for margin, accepted in ((clear - 1e-3, True), (clear + 1e-3, False)):
        s = slow(safety_margin_m=margin).score(arm_candidates(path), ctx(tiny))
        assert np.isfinite(s[0]) == accepted
    # the measured state (row 0) inside the margin does not by itself reject a plan leaving it
    leaving = joint_line(end=Q_HOME + np.r_[0.0, 0.6, 0.0, 0.0, 0.0, 0.0, 0.0])
    at_start = next(o for o in (ObstacleSet.from_shapes(spheres=[("p", tuple(ee_positions(Q_HOME) + [0, 0, dz]), 0.01)])
                                for dz in np.arange(0.12, 0.0, -0.005))
                    if 0.0 < arm_clearance(Q_HOME, o) < 0.03)
    assert arm_clearance(leaving[1:], at_start).min() > 0.03
    assert np.isfinite(slow(safety_margin_m=0.03).score(arm_candidates(leaving), ctx(at_start))[0])


def test_joint_position_and_velocity_limits_reject() -> None:
    ok = joint_line()
    beyond = ok.copy()
    beyond[5, 1] = 2.3  # joint_2 past its 2.24 rad limit at a planned row
    fast = ok.copy()
    fast[1:, 0] += 0.08  # a 0.08 rad step of joint_1 in 0.05 s: 1.6 rad/s > 1.3963
    s = GeometricSelector(GeometricScoreConfig(dt=0.05)).score(arm_candidates(beyond, fast), ctx())
    assert np.all(s == -np.inf)
    assert np.isfinite(slow().score(arm_candidates(ok), ctx())[0])


def test_rows_just_past_a_position_limit_are_put_on_it_and_farther_ones_still_reject() -> None:
    """A goal at a joint limit: plans scatter ~0.01 rad around it, and without the projection every one is rejected."""
    sel = slow(limit_projection_rad=0.05)

    def to_joint_2(end: float) -> np.ndarray:
        return joint_line(end=np.r_[CTX["goal_q"][0], end, CTX["goal_q"][2:]])

    grazing, far = to_joint_2(2.28), to_joint_2(2.30)         # joint_2 ends 0.04 / 0.06 rad past its 2.24 limit
    cands = arm_candidates(grazing, far)
    cands[1, 0, 1] = 2.26                                     # row 0 is the measured state: never changed
    before = cands.copy()
    assert np.all(sel.score(before.copy(), ctx()) == -np.inf)  # score alone rejects both
    sel.project(cands)
    assert np.all(cands[0, 1:, 1] <= np.float32(2.24)) and cands[0, -1, 1] == np.float32(2.24)
    assert cands[1, 0, 1] == np.float32(2.26) and cands[1, -1, 1] == np.float32(2.30)  # left to be rejected
    untouched = np.ones(cands.shape[-1], dtype=bool)
    untouched[1] = False                                      # joints in range and context columns stay bit-exact
    assert np.array_equal(cands[..., untouched], before[..., untouched])
    s = sel.score(cands, ctx())
    assert np.isfinite(s[0]) and s[1] == -np.inf
    assert sel.rejections(cands, ctx())["position_limit"].tolist() == [False, True]
    off = slow(limit_projection_rad=0.0)
    off.project(before)
    assert np.all(off.score(before, ctx()) == -np.inf)


def test_a_chosen_plan_ending_near_the_goal_configuration_is_bent_onto_it_when_it_stays_clear() -> None:
    goal_q = CTX["goal_q"]
    near = joint_line(end=goal_q + np.r_[0.04, -0.03, 0.0, 0.02, 0.0, 0.03, 0.0])   # 0.06 rad off
    sel = slow(goal_snap_rad=0.1)
    plan = arm_candidates(near)[0]
    bent, score = sel.refine(plan, ctx())
    assert np.allclose(bent[-1, :7], goal_q, atol=1e-6)            # ends on the goal configuration
    assert np.array_equal(bent[0], plan[0])                         # the measured state stays
    assert np.array_equal(bent[:, 7:], plan[:, 7:])                 # context columns untouched
    assert score == pytest.approx(sel.score(bent[None].copy(), ctx())[0])
    assert score > sel.score(plan[None].copy(), ctx())[0]           # ends nearer the goal: more progress
    far = arm_candidates(joint_line(end=goal_q + np.r_[0.0, 0.15, 0.0, 0.0, 0.0, 0.0, 0.0]))[0]
    assert sel.refine(far, ctx()) is None                           # 0.15 rad off: beyond the snap
    assert slow(goal_snap_rad=0.0).refine(plan, ctx()) is None      # off
    # an obstacle on the bent path (not on the plan's own): the bend is refused
    end_bent, end_plan = (ee_positions(x[-1, :7].astype(np.float64)) for x in (bent, plan))
    away = (end_bent - end_plan) / np.linalg.norm(end_bent - end_plan)
    ball = next(b for b in (ObstacleSet.from_shapes(spheres=[("ball", tuple(end_bent + d * away), 0.01)])
                            for d in np.arange(0.0, 0.2, 0.002))
                if arm_clearance(bent[1:, :7], b).min() < 0.03 <= arm_clearance(plan[1:, :7], b).min())
    assert slow(goal_snap_rad=0.1, safety_margin_m=0.03).score(plan[None].copy(), ctx(ball))[0] > -np.inf
    assert slow(goal_snap_rad=0.1, safety_margin_m=0.03).refine(plan, ctx(ball)) is None


def test_rejections_name_the_check_that_score_failed() -> None:
    beyond = joint_line(end=CTX["goal_q"] + np.r_[0.0, 2.3 - CTX["goal_q"][1], 0, 0, 0, 0, 0])  # joint_2 ends past 2.24
    fast = joint_line()
    fast[1:, 0] += 1.5                        # 1.5 rad in one 1 s row on joint_1 (> 1.3963 rad/s)
    through = joint_line()
    wrist = collision_spheres(link_frames(through))[H // 2, list(SPHERE_LINK_NAMES).index("spherical_wrist_1_link")]
    ball = ObstacleSet.from_shapes(spheres=[("ball", tuple(wrist), 0.03)])
    sel = slow(safety_margin_m=0.03)
    cands = arm_candidates(joint_line(end=Q_HOME), beyond, fast, through)   # first: stays at home
    why = sel.rejections(cands, ctx(ball))
    assert why["position_limit"].tolist() == [False, True, False, False]
    assert why["velocity_limit"].tolist() == [False, False, True, False]
    assert why["collision"][3] and not why["collision"][0]
    rejected = np.logical_or.reduce(list(why.values()))
    assert np.array_equal(rejected, sel.score(cands, ctx(ball)) == -np.inf)


def test_a_non_finite_joint_row_rejects_only_its_candidate() -> None:
    ok = joint_line()
    for bad_value in (np.nan, np.inf):
        bad = ok.copy()
        bad[4, 2] = bad_value                   # joint_3 (continuous: no position limit to catch it)
        s = slow().score(arm_candidates(ok, bad), ctx(ObstacleSet.from_shapes(spheres=[("far", (0, 0, 3), 0.1)])))
        assert np.isfinite(s[0]) and s[1] == -np.inf


def test_clearance_reward_saturates() -> None:
    far = ObstacleSet.from_shapes(spheres=[("ball", (0.0, 0.0, 3.0), 0.1)])
    near = ObstacleSet.from_shapes(spheres=[("ball", tuple(ee_positions(Q_HOME) + [0, 0, 0.3]), 0.05)])
    cfg = GeometricScoreConfig(safety_margin_m=0.0, clearance_saturation_m=0.2, w_effort=0.0, w_progress=0.0)
    path = arm_candidates(joint_line())
    assert slow(cfg).score(path, ctx(far))[0] == pytest.approx(0.2 * (H - 1))
    assert slow(cfg).score(path, ctx(near))[0] < 0.2 * (H - 1)
    assert slow(cfg).score(path, ctx())[0] == pytest.approx(0.2 * (H - 1))


def test_effort_penalizes_jerky_paths() -> None:
    cfg = GeometricScoreConfig(w_clearance=0.0, w_progress=0.0, w_effort=1.0)
    jerky = joint_line().copy()
    jerky[1::2, 3] += 0.05
    s = slow(cfg).score(arm_candidates(joint_line(), jerky), ctx())
    p = ee_positions(joint_line())
    v, a = np.diff(p, axis=0), np.diff(p, n=2, axis=0)
    expected = -(np.mean(np.sum(v**2, axis=-1)) + np.mean(np.sum(a**2, axis=-1)))  # dt = 1 s
    assert s[0] == pytest.approx(expected, rel=1e-4)
    assert s[1] < s[0]


def test_progress_prefers_ending_closer_to_goal() -> None:
    cfg = GeometricScoreConfig(w_clearance=0.0, w_effort=0.0, w_progress=2.0)
    half = Q_HOME + 0.5 * (CTX["goal_q"] - Q_HOME)
    s = slow(cfg).score(arm_candidates(joint_line(), joint_line(end=half)), ctx())
    start = np.linalg.norm(ee_positions(Q_HOME) - GOAL)
    ends = [np.linalg.norm(ee_positions(CTX["goal_q"]) - GOAL), np.linalg.norm(ee_positions(half) - GOAL)]
    np.testing.assert_allclose(s, [2.0 * (start - e) for e in ends], rtol=1e-4, atol=1e-5)
    assert s[0] > s[1]


def test_geometric_needs_goal_and_q_column(tmp_path: Path, identity_student: Path) -> None:
    with pytest.raises(ValueError, match="'goal'"):
        GeometricSelector().score(arm_candidates(joint_line()), Context({"q": Q_HOME}))
    m = read_manifest(identity_student)  # an end-effector-only layout: refused, it cannot place the arm
    with pytest.raises(ValueError, match="whole-arm clearance.*column 'q'"):
        GeometricSelector().bind(m)


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


def test_clearance_cutoff_keeps_every_value_below_it() -> None:
    """arm_sweep with a cutoff = min(exact, cutoff) on random scenes (exact: the reference path)."""
    rng = np.random.default_rng(7)
    q = (Q_HOME + rng.uniform(-0.5, 0.5, (256, 7))).astype(np.float32)
    for scene in range(20):
        spheres = [(f"s{k}", rng.uniform(-0.8, 0.8, 3), rng.uniform(0.02, 0.2)) for k in range(rng.integers(1, 4))]
        boxes = [(f"b{k}", rng.uniform(-0.8, 0.8, 3), rng.normal(size=4), rng.uniform(0.02, 0.6, 3))
                 for k in range(rng.integers(1, 4))]
        obs = ObstacleSet.from_shapes(spheres=spheres, boxes=boxes)
        exact = arm_clearance(q.astype(np.float64), obs)
        fast, _ = arm_sweep(q, obs, cutoff=0.18)
        np.testing.assert_allclose(fast, np.minimum(exact, 0.18), atol=1e-5, err_msg=f"scene {scene}")
