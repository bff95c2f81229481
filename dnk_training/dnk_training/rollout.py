"""The teacher as a policy: its one decision function (shared with the evaluation bridge) and `eval-teacher`.

Per control step and episode: N conditioned priors from the current observation, the teacher's
full guided reverse process, ranking by the return classifier at t = 0, execute the first
action of the best candidate. `evaluate_teacher` runs episodes side by side so one batched
network call serves all of them (a CPU runs a 640-row batch far more efficiently than ten
64-row batches); `dnk_training.eval.bridge.TeacherPolicy` runs one state at a time, timed
like the students, through the same `decide`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from .classifier import ReturnClassifier
from .configs import EvalConfig, SamplingConfig
from .eval.metrics import normalized_return
from .teacher import Teacher


def sample_candidates(
    teacher: Teacher, clf: ReturnClassifier, obs: np.ndarray, sampling: SamplingConfig, generator: torch.Generator
) -> torch.Tensor:
    """num_candidates guided teacher samples per raw observation row (E, ds): (E*n, H, D) normalized."""
    lay = teacher.cfg.layout
    (fixed,) = lay.fixed  # locomotion layout: obs at row 0
    sl = lay.column_slice(fixed.column)
    obs_n = teacher.normalizer.slice(sl.start, sl.stop).normalize(torch.as_tensor(obs, dtype=torch.float32))
    cond = {fixed.column: obs_n.repeat_interleave(sampling.num_candidates, dim=0)}
    prior = teacher.make_prior(cond, sampling.temperature, generator)
    return teacher.sample(prior, guidance_weight=sampling.guidance_weight, generator=generator, classifier=clf)


@dataclass(frozen=True)
class TeacherDecision:
    """The teacher's decision for E states, raw units: what eval-teacher and the bridge execute."""

    actions: np.ndarray      # (E, da) first action of each state's best candidate (not clipped)
    candidates: np.ndarray   # (E, n, H, D)
    best: np.ndarray         # (E,) index of the classifier's best candidate
    timing_ms: dict[str, float]


def decide(
    teacher: Teacher, clf: ReturnClassifier, obs: np.ndarray, sampling: SamplingConfig, generator: torch.Generator
) -> TeacherDecision:
    """The native protocol for raw observations (E, ds): sample n candidates per state, rank them
    with the return classifier at t = 0, take the best one's first action."""
    lay = teacher.cfg.layout
    n = sampling.num_candidates
    t0 = time.perf_counter()
    x0 = sample_candidates(teacher, clf, obs, sampling, generator)
    t1 = time.perf_counter()
    with torch.no_grad():
        best = clf(x0, 0).view(obs.shape[0], n).argmax(dim=1).numpy()
    raw = teacher.normalizer.denormalize(x0).numpy().reshape(obs.shape[0], n, *x0.shape[1:])
    actions = raw[np.arange(obs.shape[0]), best, lay.action.row, lay.column_slice(lay.action.column)]
    t2 = time.perf_counter()
    timing = {"sampling_ms": (t1 - t0) * 1e3, "scoring_ms": (t2 - t1) * 1e3, "total_ms": (t2 - t0) * 1e3}
    return TeacherDecision(actions, raw, best, timing)


def evaluate_teacher(
    teacher: Teacher,
    clf: ReturnClassifier,
    sampling: SamplingConfig,
    ev: EvalConfig,
    progress: bool = True,
    on_partial: Callable[[dict], None] | None = None,
    partial_every: int = 25,
) -> dict:
    """Run ``ev.episodes`` episodes of each seed side by side (env seeds as in the evaluation
    bridge, ``ev.env_seed``); ``on_partial`` gets the running summary every ``partial_every``
    steps so a long CPU evaluation leaves usable numbers if it is stopped."""
    from .eval.bridge import make_env

    runs = [(seed, ep) for seed in ev.seeds for ep in range(ev.episodes)]
    returns = np.zeros(len(runs))
    lengths = np.zeros(len(runs), dtype=int)
    t0 = time.perf_counter()
    bar = tqdm(total=len(ev.seeds) * ev.max_steps, desc="eval-teacher", disable=not progress, mininterval=10)
    for seed in ev.seeds:
        mine = [i for i, (s, _) in enumerate(runs) if s == seed]
        envs = [make_env(ev.env_id, ev.max_steps) for _ in mine]
        obs = np.stack([e.reset(seed=ev.env_seed(*runs[i]))[0] for e, i in zip(envs, mine)])
        active = np.ones(len(mine), dtype=bool)
        gen = torch.Generator().manual_seed(seed)
        for step in range(ev.max_steps):
            bar.update(1)
            if on_partial is not None and step and step % partial_every == 0:
                on_partial(_summary(returns, lengths, runs, ev, sampling, time.perf_counter() - t0, partial=True))
            idx = np.flatnonzero(active)
            if idx.size == 0:
                break
            acts = np.clip(decide(teacher, clf, obs[idx], sampling, gen).actions, -1.0, 1.0)
            for j, a in zip(idx, acts):
                o, r, term, trunc, _ = envs[j].step(a)
                obs[j] = o
                returns[mine[j]] += r
                lengths[mine[j]] += 1
                active[j] = not (term or trunc)
    bar.close()
    return _summary(returns, lengths, runs, ev, sampling, time.perf_counter() - t0, partial=False)


def _summary(returns: np.ndarray, lengths: np.ndarray, runs: list[tuple[int, int]], ev: EvalConfig,
             sampling: SamplingConfig, wall: float, partial: bool) -> dict:
    norm = normalized_return(returns, ev.env_id)
    out = {
        "partial": partial,
        "env_id": ev.env_id,
        "episodes": len(runs),
        "max_steps": ev.max_steps,
        "seeds": [ev.env_seed(*r) for r in runs],
        "num_candidates": sampling.num_candidates,
        "temperature": sampling.temperature,
        "guidance_weight": sampling.guidance_weight,
        "episode_returns": returns.tolist(),
        "episode_lengths": lengths.tolist(),
        "return_mean": float(returns.mean()),
        "return_std": float(returns.std()),
        "normalized_mean": float(np.mean(norm)),
        "normalized_std": float(np.std(norm)),
        "wall_s": wall,
    }
    if lengths.max() < 1000:
        # D4RL scores are defined on 1000-step episodes; scale the per-step return up, labelled as such
        ext = normalized_return(returns * 1000.0 / np.maximum(lengths, 1), ev.env_id)
        out["normalized_mean_extrapolated_to_1000_steps"] = float(np.mean(ext))
        out["normalized_std_extrapolated_to_1000_steps"] = float(np.std(ext))
    return out


def measure_latency(teacher: Teacher, clf: ReturnClassifier, sampling: SamplingConfig, decisions: int = 20, warmup: int = 2) -> dict:
    """Wall time of one decision (one state, num_candidates candidates), ms."""
    gen = torch.Generator().manual_seed(0)
    obs = teacher.normalizer.denormalize(np.zeros((1, teacher.dim), np.float32))[:, : teacher.cfg.layout.column_slice("obs").stop]
    times = []
    for i in range(warmup + decisions):
        t0 = time.perf_counter()
        decide(teacher, clf, obs, sampling, gen)
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1e3)
    return {
        "num_candidates": sampling.num_candidates,
        "diffusion_steps": teacher.steps,
        "guidance_weight": sampling.guidance_weight,
        "decisions": decisions,
        "mean_ms": float(np.mean(times)),
        "median_ms": float(np.median(times)),
        "p95_ms": float(np.percentile(times, 95)),
        "torch_threads": torch.get_num_threads(),
    }
