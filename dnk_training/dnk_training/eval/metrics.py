"""Table I metrics, exactly as the paper defines them (Sec. V-A, "Evaluation Protocol").

- return: D4RL-normalized episode return, mean ± std over seeds, where each seed contributes the
  mean over its episodes (std of per-seed means);
- worst-case: min over seeds of the per-seed mean;
- intra-run variability: std of per-episode normalized returns within a seed, averaged over seeds;
- decision latency per control step: mean ± std and p95 over all control steps of all seeds.

A "seed" of a student row is one (training seed, evaluation seed) pair: the row pools every trained
model of the method. The spread between trained models alone is reported too (training_seed_std),
and `bootstrap_difference` says how sure a difference between two rows is.

Stds are population stds (ddof=0, numpy's default); the paper does not say which, and with few
seeds the choice matters, so it is stated here and in the report.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
from pydantic import BaseModel, Field

# D4RL reference returns (random policy, expert) from the D4RL paper / d4rl package,
# copied from ../shared/reference/d4rl_locomotion.md.
D4RL_REF_SCORES: dict[str, tuple[float, float]] = {
    "halfcheetah": (-280.178953, 12135.0),
    "walker2d": (1.629008, 4592.3),
    "hopper": (-20.272305, 3234.3),
}
D4RL_EPISODE_STEPS = 1000


def env_family(env_id: str) -> str:
    """'HalfCheetah-v5' -> 'halfcheetah': the key of the D4RL reference table."""
    family = env_id.split("-")[0].lower()
    if family not in D4RL_REF_SCORES:
        raise ValueError(
            f"env '{env_id}': no D4RL reference scores for '{family}'; "
            f"use one of {sorted(D4RL_REF_SCORES)} (e.g. HalfCheetah-v5, Walker2d-v5)"
        )
    return family


def normalized_return(episode_return: float | np.ndarray, env_id: str,
                      episode_steps: int = D4RL_EPISODE_STEPS) -> float | np.ndarray:
    """D4RL normalized score (x1, as in the paper's Table I).

    The reference returns belong to 1000-step episodes. For a shorter evaluation budget
    (``episode_steps`` < 1000, a documented reduced-scale setting) both references are scaled by
    ``episode_steps / 1000``, so a policy that earns the expert's per-step reward still scores 1;
    with the default 1000 this is exactly D4RL's formula.
    """
    if not 0 < episode_steps <= D4RL_EPISODE_STEPS:
        raise ValueError(f"episode_steps={episode_steps}: must be in 1..{D4RL_EPISODE_STEPS}")
    ref_min, ref_max = D4RL_REF_SCORES[env_family(env_id)]
    scale = episode_steps / D4RL_EPISODE_STEPS
    return (np.asarray(episode_return, dtype=np.float64) - ref_min * scale) / ((ref_max - ref_min) * scale)


class MethodMetrics(BaseModel):
    """One row of Table I."""

    num_seeds: int = Field(description="number of (training seed, evaluation seed) runs aggregated")
    num_training_seeds: int = Field(1, description="trained models pooled in the row (1: one model, e.g. the teacher)")
    training_seed_std: float = Field(0.0, description="std (ddof=0) over training seeds of each model's mean "
                                     "normalized return (0 with one model)")
    num_episodes: int = Field(description="total episodes over all seeds")
    return_mean: float = Field(description="mean over seeds of the per-seed mean normalized return")
    return_std: float = Field(description="std (ddof=0) over seeds of the per-seed mean normalized return")
    worst_case: float = Field(description="min over seeds of the per-seed mean normalized return")
    intra_run_std: float = Field(description="std (ddof=0) of per-episode normalized returns within a seed, mean over seeds")
    raw_return_mean: float = Field(description="mean raw (unnormalized) episode return over all episodes, env units")
    latency_mean_ms: float = Field(description="mean decision latency per control step, ms")
    latency_std_ms: float = Field(description="std (ddof=0) of the decision latency per control step, ms")
    latency_median_ms: float = Field(description="median decision latency per control step, ms (robust to CPU contention)")
    latency_p95_ms: float = Field(description="95th percentile of the decision latency per control step, ms")
    num_decisions: int = Field(description="number of timed control steps")
    episode_steps_mean: float = Field(description="mean control steps an episode lasted (max_steps when none ended "
                                      "early): what the robot did, beside what it earned")
    terminated_episodes: int = Field(description="episodes the env ended early (e.g. Walker2d's fall), of num_episodes")


def return_metrics(normalized_by_seed: Mapping[int, Sequence[float]]) -> dict[str, float]:
    """Return, worst-case and intra-run variability from per-seed lists of normalized returns."""
    if not normalized_by_seed:
        raise ValueError("normalized_by_seed is empty: need at least one seed with episodes")
    per_seed = []
    for seed, episodes in normalized_by_seed.items():
        arr = np.asarray(episodes, dtype=np.float64)
        if arr.size == 0:
            raise ValueError(f"seed {seed} has no episodes; drop it or rerun it")
        per_seed.append(arr)
    seed_means = np.array([a.mean() for a in per_seed])
    return {
        "return_mean": float(seed_means.mean()),
        "return_std": float(seed_means.std()),
        "worst_case": float(seed_means.min()),
        "intra_run_std": float(np.mean([a.std() for a in per_seed])),
    }


def latency_metrics(samples_ms: Sequence[float] | np.ndarray) -> dict[str, float]:
    """Mean, std, median and p95 of per-control-step decision latencies (ms)."""
    arr = np.asarray(samples_ms, dtype=np.float64)
    if arr.size == 0:
        raise ValueError("no latency samples: the run recorded no control steps")
    return {
        "latency_mean_ms": float(arr.mean()),
        "latency_std_ms": float(arr.std()),
        "latency_median_ms": float(np.median(arr)),
        "latency_p95_ms": float(np.percentile(arr, 95)),
    }


def method_metrics(normalized_by_seed: Mapping[Hashable, Sequence[float]], raw_returns: Sequence[float],
                   latency_samples_ms: Sequence[float], lengths: Sequence[int], terminated: Sequence[bool]) -> MethodMetrics:
    """All Table I columns for one method; keys (training seed, eval seed) pool several trained models.
    lengths / terminated: per episode, in any order (the env's own record of how each episode ended)."""
    num_episodes = sum(len(v) for v in normalized_by_seed.values())
    if len(lengths) != len(terminated) or len(lengths) != num_episodes:
        raise ValueError(f"lengths ({len(lengths)}) and terminated ({len(terminated)}) need one entry per episode "
                         f"({num_episodes})")
    lat = np.asarray(latency_samples_ms, dtype=np.float64)
    by_model: dict[Hashable, list[float]] = {}
    for key, episodes in normalized_by_seed.items():
        by_model.setdefault(key[0] if isinstance(key, tuple) else None, []).append(float(np.mean(episodes)))
    model_means = np.array([np.mean(v) for v in by_model.values()])
    return MethodMetrics(
        num_seeds=len(normalized_by_seed),
        num_training_seeds=len(by_model),
        training_seed_std=float(model_means.std()),
        num_episodes=num_episodes,
        raw_return_mean=float(np.mean(raw_returns)),
        num_decisions=int(lat.size),
        episode_steps_mean=float(np.mean(lengths)),
        terminated_episodes=int(np.sum(terminated)),
        **return_metrics(normalized_by_seed),
        **latency_metrics(lat),
    )


def bootstrap_difference(a: Mapping[Hashable, Sequence[float]], b: Mapping[Hashable, Sequence[float]],
                         resamples: int = 10000, seed: int = 0) -> dict[str, float]:
    """How sure is mean(a) - mean(b)? Hierarchical bootstrap: trained models (keys) are resampled
    with replacement, then each model's episodes; a method's value is the mean of its models' means.

    a, b: training seed -> normalized episode returns of that model (all evaluation seeds pooled).
    Returns the observed difference, its 95 % percentile interval and the share of resamples > 0.
    """
    rng = np.random.default_rng(seed)

    def resampled(groups: Mapping[Hashable, Sequence[float]]) -> np.ndarray:
        eps = [np.asarray(v, dtype=np.float64) for v in groups.values()]
        if not eps or any(e.size == 0 for e in eps):
            raise ValueError("bootstrap_difference needs at least one model with episodes on each side")
        means = np.stack([e[rng.integers(0, e.size, (resamples, e.size))].mean(1) for e in eps], axis=1)
        pick = rng.integers(0, len(eps), (resamples, len(eps)))
        return np.take_along_axis(means, pick, axis=1).mean(1)

    def observed(groups: Mapping[Hashable, Sequence[float]]) -> float:
        return float(np.mean([np.mean(v) for v in groups.values()]))

    diff = resampled(a) - resampled(b)
    lo, hi = np.percentile(diff, [2.5, 97.5])
    return {"difference": observed(a) - observed(b), "ci95_low": float(lo), "ci95_high": float(hi),
            "p_greater": float((diff > 0).mean()), "resamples": resamples,
            "models_a": len(a), "models_b": len(b)}
