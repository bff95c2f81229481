"""A decision recorded as dnk_msgs/PlannerDecision (through CDR, as in a bag) replays bit for bit
through a fresh planner core, from any point of the stream, and a changed input changes it."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from arm_testing import Q_HOME, ee_positions, goal_context
from rclpy.serialization import deserialize_message, serialize_message

from dnk_msgs.msg import PlannerDecision
from dnk_planner.core import Context, Planner
from dnk_planner.core.config import GeometricScoreConfig, PlannerConfig
from dnk_planner.core.geometry import ObstacleSet
from dnk_planner.core.manifest import load_model
from dnk_planner.core.priors import generator_words, set_generator_words
from dnk_planner.core.selectors import GeometricSelector
from dnk_planner.ros.decisions import fill_decision, read_decision
from dnk_planner.testing.models import build_arm_primitive_model

CTX = goal_context((0.0, 0.3, -0.1))
OBSTACLES = ObstacleSet.from_shapes(
    spheres=[("ball", tuple(ee_positions(Q_HOME) + np.array([0.0, 0.15, -0.05])), 0.05)],
    boxes=[("crate", (0.4, -0.3, 0.1), (0.0, 0.0, 0.3827, 0.9239), (0.1, 0.2, 0.05))])


@pytest.fixture(scope="module")
def arm_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("arm") / "arm.onnx"
    build_arm_primitive_model(path)
    return path


def planner(arm_path: Path, cfg: PlannerConfig, score: GeometricScoreConfig) -> Planner:
    return Planner(load_model(arm_path, provider="cpu"), GeometricSelector(score), cfg)


def recorded(arm_path: Path, steps: int = 5) -> list[PlannerDecision]:
    """A short stream of decisions (the arm moving along its plans), as bytes on the wire and back."""
    p = planner(arm_path, PlannerConfig(seed=7, temperature=0.8), GeometricScoreConfig(safety_margin_m=0.03))
    q, out = CTX["q"].copy(), []
    for k in range(steps):
        ctx = Context({**CTX, "q": q}, OBSTACLES)
        d = p.plan(ctx)
        if k % 2:
            p.prefetch()  # the node prefetches in its idle time: must not matter
        msg = fill_decision(PlannerDecision(), d, ctx, k, p.manifest.onnx_sha256, p.manifest.model_id,
                            p.config.model_dump_json(), p.selector.config.model_dump_json())
        out.append(deserialize_message(serialize_message(msg), PlannerDecision))
        q = d.action.astype(np.float64)
    return out


def test_generator_words_round_trip() -> None:
    a = np.random.default_rng(123)
    a.standard_normal(5, dtype=np.float32)
    words = generator_words(a)
    b = np.random.default_rng(0)
    set_generator_words(b, words)
    np.testing.assert_array_equal(a.standard_normal(100, dtype=np.float32), b.standard_normal(100, dtype=np.float32))
    with pytest.raises(ValueError, match="6 words"):
        set_generator_words(b, words[:5])


def test_recorded_decisions_replay_bit_identically_from_any_point(arm_path: Path) -> None:
    msgs = recorded(arm_path)
    first = read_decision(msgs[0])
    assert first.context.obstacles.box_ids == ("crate",) and first.planner_config.seed == 7
    assert any(m.best_index >= 0 for m in msgs) and any(m.best_index < 0 for m in msgs)  # both kinds replayed
    assert len(set(m.prior_generator_state.tobytes() for m in msgs)) == len(msgs), "each decision its own noise"
    fresh = planner(arm_path, first.planner_config, first.score_config)
    for msg in reversed(msgs):  # out of order: each decision stands on its own
        rec = read_decision(msg)
        d = fresh.plan(rec.context, generator_state=rec.generator_state)
        assert d.best_index == rec.best_index
        np.testing.assert_array_equal(d.scores, rec.scores)
        np.testing.assert_array_equal(d.action.astype(np.float32), rec.action)
    assert set(first.timing) >= {"prior_ms", "inference_ms", "scoring_ms", "total_ms"}


def test_a_changed_input_changes_the_replayed_decision(arm_path: Path) -> None:
    rec = next(r for r in map(read_decision, recorded(arm_path, steps=3)) if r.best_index >= 0)
    fresh = planner(arm_path, rec.planner_config, rec.score_config)
    other_noise = fresh.plan(rec.context, generator_state=(0, 1, 0, 3, 0, 0))
    assert not np.array_equal(other_noise.scores, rec.scores)
    moved = Context({**rec.context.values, "q": rec.context.values["q"] + 0.01}, rec.context.obstacles)
    assert not np.array_equal(fresh.plan(moved, generator_state=rec.generator_state).scores, rec.scores)


def test_an_inconsistent_message_names_the_field(arm_path: Path) -> None:
    msg = recorded(arm_path, steps=1)[0]
    msg.context_sizes = [7, 3]
    with pytest.raises(ValueError, match="context_sizes"):
        read_decision(msg)
