"""Table I metrics against hand-computed values and the D4RL reference constants."""

import math

import numpy as np
import pytest

from dnk_training.eval.metrics import (
    D4RL_REF_SCORES, latency_metrics, method_metrics, normalized_return, return_metrics,
)

# Three seeds, two episodes each (normalized returns).
BY_SEED = {0: [0.5, 0.7], 1: [0.2, 0.4], 2: [0.9, 0.9]}


def test_return_metrics_hand_computed():
    m = return_metrics(BY_SEED)
    # per-seed means 0.6, 0.3, 0.9
    assert m["return_mean"] == pytest.approx(0.6)
    assert m["return_std"] == pytest.approx(math.sqrt((0.0**2 + 0.3**2 + 0.3**2) / 3))
    assert m["worst_case"] == pytest.approx(0.3)
    # within-seed stds 0.1, 0.1, 0.0
    assert m["intra_run_std"] == pytest.approx(0.2 / 3)


def test_worst_case_is_min_of_seed_means_not_min_episode():
    m = return_metrics({0: [0.0, 1.0], 1: [0.4, 0.4]})
    assert m["worst_case"] == pytest.approx(0.4)  # seed 0 has the worst episode but mean 0.5


def test_normalized_return_reference_constants():
    for env_id, family in (("HalfCheetah-v5", "halfcheetah"), ("Walker2d-v5", "walker2d")):
        lo, hi = D4RL_REF_SCORES[family]
        assert normalized_return(lo, env_id) == pytest.approx(0.0)
        assert normalized_return(hi, env_id) == pytest.approx(1.0)
    assert D4RL_REF_SCORES["halfcheetah"] == (-280.178953, 12135.0)
    assert D4RL_REF_SCORES["walker2d"] == (1.629008, 4592.3)
    # Dataset README: expert block 4382 -> 0.376 (halfcheetah), 1292 -> 0.281 (walker2d)
    assert normalized_return(4382.0, "HalfCheetah-v5") == pytest.approx(0.376, abs=5e-4)
    assert normalized_return(1292.0, "Walker2d-v5") == pytest.approx(0.281, abs=5e-4)


def test_normalized_return_shorter_budget_scales_references():
    lo, hi = D4RL_REF_SCORES["halfcheetah"]
    # Earning the expert's per-step reward for 250 steps scores 1, random's scores 0.
    assert normalized_return(hi / 4, "HalfCheetah-v5", episode_steps=250) == pytest.approx(1.0)
    assert normalized_return(lo / 4, "HalfCheetah-v5", episode_steps=250) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="episode_steps"):
        normalized_return(0.0, "HalfCheetah-v5", episode_steps=0)


def test_unknown_env_names_the_fix():
    with pytest.raises(ValueError, match="HalfCheetah-v5"):
        normalized_return(1.0, "Ant-v5")


def test_latency_metrics():
    samples = np.arange(1, 101, dtype=float)  # 1..100 ms
    m = latency_metrics(samples)
    assert m["latency_mean_ms"] == pytest.approx(50.5)
    assert m["latency_std_ms"] == pytest.approx(np.sqrt((100**2 - 1) / 12))
    assert m["latency_median_ms"] == pytest.approx(50.5)
    assert m["latency_p95_ms"] == pytest.approx(95.05)  # linear interpolation at rank 94.05
    with pytest.raises(ValueError, match="latency"):
        latency_metrics([])


def test_method_metrics_row_and_empty_seed():
    row = method_metrics(BY_SEED, [1.0, 2.0, 3.0], [1.0, 3.0], [10, 10, 4, 10, 6, 10], [False] * 2 + [True] + [False, True, False])
    assert (row.num_seeds, row.num_episodes, row.num_decisions) == (3, 6, 2)
    assert (row.episode_steps_mean, row.terminated_episodes) == (pytest.approx(50 / 6), 2)
    with pytest.raises(ValueError, match="one entry per episode"):
        method_metrics(BY_SEED, [1.0], [1.0], [10] * 5, [False] * 5)
    assert row.raw_return_mean == pytest.approx(2.0)
    assert row.latency_mean_ms == pytest.approx(2.0)
    with pytest.raises(ValueError, match="seed 7"):
        return_metrics({7: []})
