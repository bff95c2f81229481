"""The teacher as a policy: its decision (shared with the evaluation bridge) and `eval-teacher`.

Per control step and episode: N conditioned priors from the current observation, the teacher's
full guided reverse process, ranking by the return classifier at t = 0, execute the first
action of the best candidate. `evaluate_teacher` runs episodes side by side so one batched
network call serves all of them (a CPU runs a 640-row batch far more efficiently than ten
64-row batches); `dnk_training.eval.bridge.TeacherPolicy` runs one state at a time, timed
like the students, through the same `sample_candidates`.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from .classifier import ReturnClassifier
from .configs import EvalConfig, SamplingConfig
from .teacher import Teacher


def d4rl_normalized(ret: float, ref_min: float, ref_max: float) -> float:
    return (ret - ref_min) / (ref_max - ref_min)


def sample_candidates(
    teacher: Teacher, clf: ReturnClassifier, obs: np.ndarray, sampling: SamplingConfig, generator: torch.Generator
) -> torch.Tensor:
    """num_candidates guided teacher samples per raw observation row (E, ds): (E*n, H, D) normalized."""
    lay = teacher.cfg.layout
    (fixed,) = lay.fixed  # locomotion layout: obs at row 0
    sl = lay.column_slice(fixed.column)
    obs_n = teacher.normalizer.slice(sl.start, sl.stop).normalize(torch.as_tensor(obs, dtype=torch.float32))
    cond = {fixed.source: obs_n.repeat_interleave(sampling.num_candidates, dim=0)}
    prior = teacher.make_prior(cond, sampling.temperature, generator)
    return teacher.sample(prior, guidance_weight=sampling.guidance_weight, generator=generator, classifier=clf)


def decide(
    teacher: Teacher, clf: ReturnClassifier, obs: np.ndarray, sampling: SamplingConfig, generator: torch.Generator
) -> np.ndarray:
    """Actions (E, da) in raw units for raw observations (E, ds)."""
    lay = teacher.cfg.layout
    n = sampling.num_candidates
    x0 = sample_candidates(teacher, clf, obs, sampling, generator)
    with torch.no_grad():
        scores = clf(x0, 0).view(obs.shape[0], n)
    best = x0.view(obs.shape[0], n, *x0.shape[1:])[torch.arange(obs.shape[0]), scores.argmax(dim=1)]
    raw = teacher.normalizer.unnormalize(best)
    act = raw[:, lay.action.row, lay.column_slice(lay.action.column)]
    return act.clamp(-1.0, 1.0).numpy()


def evaluate_teacher(
    teacher: Teacher,
    clf: ReturnClassifier,
    sampling: SamplingConfig,
    ev: EvalConfig,
    progress: bool = True,
    on_partial: Callable[[dict], None] | None = None,
    partial_every: int = 25,
) -> dict:
    """Run ``ev.episodes`` episodes side by side; ``on_partial`` gets the running summary every
    ``partial_every`` steps so a long CPU evaluation leaves usable numbers if it is stopped."""
    import gymnasium as gym

    envs = [gym.make(ev.env_id, max_episode_steps=ev.max_steps) for _ in range(ev.episodes)]
    obs = np.stack([e.reset(seed=ev.seed + i)[0] for i, e in enumerate(envs)])
    returns = np.zeros(ev.episodes)
    lengths = np.zeros(ev.episodes, dtype=int)
    active = np.ones(ev.episodes, dtype=bool)
    gen = torch.Generator().manual_seed(ev.seed)
    t0 = time.perf_counter()
    for step in tqdm(range(ev.max_steps), desc="eval-teacher", disable=not progress, mininterval=10):
        if on_partial is not None and step and step % partial_every == 0:
            on_partial(_summary(returns, lengths, ev, sampling, time.perf_counter() - t0, partial=True))
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        acts = decide(teacher, clf, obs[idx], sampling, gen)
        for j, a in zip(idx, acts):
            o, r, term, trunc, _ = envs[j].step(a)
            obs[j] = o
            returns[j] += r
            lengths[j] += 1
            active[j] = not (term or trunc)
    return _summary(returns, lengths, ev, sampling, time.perf_counter() - t0, partial=False)


def _summary(returns: np.ndarray, lengths: np.ndarray, ev: EvalConfig, sampling: SamplingConfig, wall: float, partial: bool) -> dict:
    norm = [d4rl_normalized(r, ev.ref_min, ev.ref_max) for r in returns]
    out = {
        "partial": partial,
        "env_id": ev.env_id,
        "episodes": ev.episodes,
        "max_steps": ev.max_steps,
        "seeds": [ev.seed + i for i in range(ev.episodes)],
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
        ext = [d4rl_normalized(r * 1000.0 / max(l, 1), ev.ref_min, ev.ref_max) for r, l in zip(returns, lengths)]
        out["normalized_mean_extrapolated_to_1000_steps"] = float(np.mean(ext))
        out["normalized_std_extrapolated_to_1000_steps"] = float(np.std(ext))
    return out


def measure_latency(teacher: Teacher, clf: ReturnClassifier, sampling: SamplingConfig, decisions: int = 20, warmup: int = 2) -> dict:
    """Wall time of one decision (one state, num_candidates candidates), ms."""
    gen = torch.Generator().manual_seed(0)
    obs = teacher.normalizer.unnormalize(np.zeros((1, teacher.dim), np.float32))[:, : teacher.cfg.layout.column_slice("obs").stop]
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
