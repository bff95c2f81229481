"""Table II's measurement from recorded joint states, its scenes, and its summary (no ROS here; the
closed loop over DDS is dnk_bringup/test/test_arm_student.py)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from dnk_planner.core.arm_geometry import arm_clearance
from dnk_planner.core.kinematics import forward_kinematics
from dnk_training.arm.config import load_demo_config
from dnk_training.arm.demos import solve_scene
from dnk_training.arm.table2 import markdown, summarize
from dnk_training.arm.trials import GOAL_TOLERANCE_M, SETTLE_S, measure, trial_scenes


def _straight(scene, seconds: float, rate: float = 100.0) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(0.0, seconds, 1.0 / rate)
    s = np.clip(t / (0.5 * seconds), 0.0, 1.0)[:, None]
    return t, scene.q_start + s * (scene.goal_q - scene.q_start)


def test_trial_scenes_are_seeded_and_not_the_training_scenes() -> None:
    cfg = load_demo_config("small")
    a, b = trial_scenes(cfg, 3), trial_scenes(cfg, 3)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.q_start, y.q_start)
    solved = solve_scene(cfg, 0)
    train_start = solved[0].scene.q_start if solved else None
    assert train_start is None or not any(np.allclose(s.q_start, train_start) for s in a)
    assert all(np.all(arm_clearance(np.stack([s.q_start, s.goal_q]), s.obstacles) >= cfg.margin_m) for s in a)


def test_measure_reads_success_and_completion_from_the_joint_states() -> None:
    scene = trial_scenes(load_demo_config("small"), 1)[0]
    t, q = _straight(scene, 6.0)
    r = measure(t, q, scene, timeout_s=30.0)
    ee = forward_kinematics(q)[:, :3, 3]
    first = int(np.argmax(np.linalg.norm(ee - scene.goal, axis=1) <= GOAL_TOLERANCE_M))
    assert r["reached"] and r["completion_s"] == t[first] and r["completion_s"] <= 3.0
    assert r["terminal_error_mm"] < 1.0
    assert math.isclose(r["min_arm_clearance_mm"], arm_clearance(q, scene.obstacles).min() * 1e3)
    # leaving the tolerance again before the end: not settled, not reached
    q_away = q.copy()
    q_away[-10:] = scene.q_start
    assert not measure(t, q_away, scene, 30.0)["reached"]
    # reached too late, or not held for SETTLE_S
    assert not measure(t, q, scene, timeout_s=0.5 * t[first])["reached"]
    short = t <= t[first] + 0.5 * SETTLE_S
    assert not measure(t[short], q[short], scene, 30.0)["reached"]


def test_summary_counts_contacts_as_failures() -> None:
    rows = [{"policy": "p", "success": True, "reached": True, "completion_s": 2.0, "terminal_error_mm": 3.0,
             "min_ee_clearance_mm": 40.0, "min_arm_clearance_mm": 31.0, "sim_min_link_distance_mm": 30.0,
             "latency_ms": [1.0, 2.0], "contact_steps": 0, "deadline_misses": 0, "holding_cycles": 0},
            {"policy": "p", "success": False, "reached": True, "completion_s": 9.0, "terminal_error_mm": 4.0,
             "min_ee_clearance_mm": -2.0, "min_arm_clearance_mm": -5.0, "sim_min_link_distance_mm": -1.0,
             "latency_ms": [3.0], "contact_steps": 12, "deadline_misses": 1, "holding_cycles": 3}]
    t = summarize(rows)
    assert t["success_rate"] == 0.5 and t["reached_rate"] == 1.0 and t["trials_with_contact"] == 1
    assert t["completion_s_mean"] == 2.0            # completion over successful trials only
    assert t["min_arm_clearance_mm"] == -5.0 and t["deadline_misses"] == 1 and t["decisions"] == 3
    md = markdown({"partial": False, "trials_per_policy": 2, "scene_seed": 1, "timeout_s": 30.0, "machine": "m",
                   "wall_s": 1.0, "command": "dnk-train arm-trials", "table": {"p": t},
                   "policies": {"p": {"model_id": "x", "role": "student", "onnx_sha256": "0" * 64, "trials": 2,
                                      "timeout_s": 30.0}}})
    assert "| p | 50 % | 1 |" in md and "dnk-train arm-trials" in md


def test_start_screen_says_why_candidates_are_rejected(tmp_path) -> None:
    from dnk_planner.testing.models import build_arm_primitive_model
    from dnk_training.arm.offline import start_decisions

    build_arm_primitive_model(tmp_path / "arm.onnx", horizon=32)
    r = start_decisions(tmp_path / "arm.onnx", trial_scenes(load_demo_config("small"), 3))
    assert len(r["feasible"]) == len(r["rejected"]) == 3
    assert set(r["rejected_share"]) == {"collision", "position_limit", "velocity_limit"}
    for feasible, why in zip(r["feasible"], r["rejected"]):
        assert all(0.0 <= v <= 1.0 for v in why.values())
        if any(v == 1.0 for v in why.values()):
            assert not feasible, "every candidate failed one check: nothing feasible"


def test_rollout_screen_reaches_with_the_analytic_model_and_takes_node_parameters(tmp_path) -> None:
    """The ideal-tracker screen executes the plans: the analytic model reaches the goals of two unseen
    scenes at its manifest's prior temperature, and node parameters given to it reach the selector
    (recorded with the result)."""
    from dnk_planner.testing.models import ARM_PRIMITIVE_TEMPERATURE, build_arm_primitive_model
    from dnk_training.arm.offline import rollouts

    build_arm_primitive_model(tmp_path / "arm.onnx", horizon=32)
    scenes = trial_scenes(load_demo_config("small"), 3)[1:]   # scene 0 starts boxed in: the model holds there
    params = {"w_progress": 90.0}
    r = rollouts(tmp_path / "arm.onnx", scenes, steps=400, params=params)
    assert r["score"]["w_progress"] == 90.0 and r["params"] == params and r["temperature"] == ARM_PRIMITIVE_TEMPERATURE
    assert r["reached"] == 2, r["results"]   # measured from the executed joints (trials.measure)
    assert all(res["terminal_error_mm"] <= 10.0 and res["min_arm_clearance_mm"] > 0 for res in r["results"])


def test_policy_spec_takes_trials_timeout_and_node_parameters(tmp_path) -> None:
    from dnk_training.arm.cli import parse_policy

    p = parse_policy("a=model.onnx,trials=3,timeout=9,temperature=0.5", tmp_path)
    assert (p.name, p.model.name, p.trials, p.timeout_s, p.params) == ("a", "model.onnx", 3, 9.0, ("temperature:=0.5",))
    with pytest.raises(ValueError, match="PARAM=VALUE"):
        parse_policy("a=model.onnx,trials", tmp_path)
