"""MuJoCo front end of the planner core: D4RL-style closed-loop evaluation in gymnasium.

Students run through the SAME `dnk_planner.core.Planner` the robot uses (conditioned priors,
one batched ONNX call, selector, first action); this module only feeds observations in,
applies the chosen action and times each decision. The teacher is wrapped behind the same
`Policy` interface so its per-step decision is timed by the same stopwatch.
"""

from __future__ import annotations

import logging
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import gymnasium as gym
import mujoco
import numpy as np
from tqdm.auto import tqdm

from dnk_planner.core.config import PlannerConfig
from dnk_planner.core import Context, Planner
from dnk_planner.core.manifest import load_model, sha256_file
from dnk_planner.core.selectors import ClassifierSelector, CriticSelector
from dnk_training.configs import ENV_SEED_BASE, EvalConfig
from dnk_training.eval.metrics import env_family, normalized_return
from dnk_training.eval.results import Candidates, EpisodeResult, MethodRun, SeedResult

log = logging.getLogger(__name__)

@dataclass
class StepOut:
    """What a policy returns per control step (a planner Decision satisfies the same fields)."""

    action: np.ndarray
    candidates: np.ndarray | None = None
    timing: dict[str, float] = field(default_factory=dict)


class Policy(Protocol):
    """A closed-loop policy the bridge can time: reset per seed, decide per control step."""

    def setting(self) -> dict[str, Any]:
        """Everything that defines the policy (paths, hashes, planner config): merge key."""

    def reset(self, seed: int) -> None:
        """Re-seed all randomness; called once per evaluation seed."""

    def decide(self, obs: np.ndarray) -> StepOut:
        """One decision from the current observation (raw env units)."""


class PlannerPolicy:
    """A student (+ selector) run through the robot's planner core, unchanged."""

    def __init__(self, student_path: str, selector: Literal["critic", "classifier"], selector_path: str,
                 num_candidates: int = 64, temperature: float = 0.5,
                 provider: str = "cpu", threads: int = 1) -> None:
        self.student = load_model(student_path, provider=provider, threads=threads)
        selector_model = load_model(selector_path, provider=provider, threads=threads)
        expected_role = {"critic": "critic", "classifier": "classifier"}[selector]
        if selector_model.manifest.role != expected_role:
            raise ValueError(
                f"--selector {selector}: {selector_path} has role {selector_model.manifest.role!r}; "
                f"pass a {expected_role} model (selectors/{expected_role}.onnx)"
            )
        self.selector = (CriticSelector if selector == "critic" else ClassifierSelector)(selector_model)
        self.selector_model = selector_model
        self.selector_kind = selector
        self.num_candidates = num_candidates
        self.temperature = temperature
        self.provider = provider
        self.threads = threads
        self.planner: Planner | None = None

    def setting(self) -> dict[str, Any]:
        return {
            "policy": "planner",
            "student": self.student.manifest.model_id,
            "student_sha256": self.student.manifest.onnx_sha256,
            "selector": self.selector_kind,
            "selector_model": self.selector_model.manifest.model_id,
            "selector_sha256": self.selector_model.manifest.onnx_sha256,
            "num_candidates": self.num_candidates,
            "temperature": self.temperature,
            "provider": self.student.providers[0],
            "threads": self.threads,
        }

    def reset(self, seed: int) -> None:
        self.planner = Planner(self.student, self.selector, PlannerConfig(
            num_candidates=self.num_candidates, temperature=self.temperature, seed=seed,
            provider=self.provider, threads=self.threads))

    def decide(self, obs: np.ndarray) -> StepOut:
        d = self.planner.plan(Context(values={"obs": obs}))
        return StepOut(action=d.action, candidates=d.candidates, timing=d.timing)


class TeacherPolicy:
    """The diffusion teacher under its native protocol (N conditioned priors, the full guided
    K-step reverse process, ranking by the return classifier at t = 0, first action of the best),
    built from dnk_training's Teacher and ReturnClassifier. torch is imported only here."""

    def __init__(self, artifacts: str, num_candidates: int | None = None, temperature: float | None = None,
                 guidance_weight: float | None = None, threads: int = 1) -> None:
        import torch

        from dnk_training.classifier import ReturnClassifier
        from dnk_training.teacher import Teacher

        self._torch = torch
        torch.set_num_threads(threads)
        art = Path(artifacts)
        for name in ("teacher.json", "classifier.json"):
            if not (art / name).is_file():
                raise ValueError(f"--teacher {artifacts}: {name} not found; train it with "
                                 f"`dnk-train train-{name.split('.')[0]} --out {artifacts}`")
        self.teacher = Teacher.load(art / "teacher.json")
        self.classifier = ReturnClassifier.load(art / "classifier.json")
        self.sampling = self.teacher.cfg.sampling.model_copy(update={k: v for k, v in {
            "num_candidates": num_candidates, "temperature": temperature,
            "guidance_weight": guidance_weight}.items() if v is not None})
        lay = self.teacher.cfg.layout
        if len(lay.fixed) != 1 or lay.fixed[0].rows != "first":
            raise ValueError(f"teacher layout fixes {lay.fixed}; the locomotion bridge needs one column at row 0")
        self.threads = threads
        self._hashes = {n: sha256_file(art / n.replace(".json", ".safetensors")) for n in ("teacher.json", "classifier.json")}
        self.generator = torch.Generator().manual_seed(0)

    def setting(self) -> dict[str, Any]:
        return {"policy": "teacher", "diffusion_steps": self.teacher.steps,
                "teacher_sha256": self._hashes["teacher.json"], "classifier_sha256": self._hashes["classifier.json"],
                **self.sampling.model_dump(), "torch_threads": self.threads}

    def reset(self, seed: int) -> None:
        self.generator = self._torch.Generator().manual_seed(seed)

    def decide(self, obs: np.ndarray) -> StepOut:
        from dnk_training.rollout import decide

        d = decide(self.teacher, self.classifier, obs.reshape(1, -1), self.sampling, self.generator)
        return StepOut(action=d.actions[0], candidates=d.candidates[0], timing=d.timing_ms)


def host_info() -> dict[str, str]:
    """Where latencies were measured (they only compare within one host)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    return {"node": platform.node(), "cpu": cpu, "python": platform.python_version()}


def _route_mujoco_warnings() -> None:
    """MuJoCo writes warnings to ./MUJOCO_LOG.TXT by default; send them to logging instead."""
    mujoco.set_mju_user_warning(lambda msg: log.debug("mujoco: %s", msg))


def make_env(env_id: str, max_steps: int) -> gym.Env:
    """The gymnasium env with its episode limit set to max_steps."""
    env_family(env_id)  # refuses envs without D4RL reference scores, naming the fix
    _route_mujoco_warnings()
    return gym.make(env_id, max_episode_steps=max_steps)


def candidate_states(env_id: str, num_states: int, dataset: str | None = None, seed: int = 0,
                     stride: int = 50) -> np.ndarray:
    """Deterministic, policy-independent states for Fig. 4, identical for every method.

    With `dataset` (D4RL-layout file): evenly spaced rows of its observations, i.e. states the
    teacher was trained on. Without: every `stride` steps of a seeded random-action rollout.
    """
    if dataset is not None:
        from dnk_training.datasets import load_dataset

        obs = load_dataset(dataset).observations
        return np.asarray(obs[np.linspace(0, len(obs) - 1, num_states).astype(int)], dtype=np.float64)
    env = make_env(env_id, max_steps=1000)
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=ENV_SEED_BASE - 1 - seed)
    states = []
    while len(states) < num_states:
        for _ in range(stride):
            obs, _, terminated, truncated, _ = env.step(rng.uniform(-1, 1, env.action_space.shape))
            if terminated or truncated:
                obs, _ = env.reset()
        states.append(np.asarray(obs, dtype=np.float64))
    env.close()
    return np.stack(states)


def _checked_action(step: StepOut, space: gym.spaces.Box, where: str) -> np.ndarray:
    action = np.asarray(step.action, dtype=np.float64).reshape(-1)
    if action.shape != space.shape:
        raise ValueError(f"{where}: action has shape {action.shape}, the env needs {space.shape}; "
                         "check the model manifest's action column")
    if not np.all(np.isfinite(action)):
        raise ValueError(f"{where}: non-finite action {action}; the model produced NaN/inf")
    return np.clip(action, space.low, space.high)


def run_seed(policy: Policy, cfg: EvalConfig, seed: int,
             on_step: Callable[[], None] | None = None) -> SeedResult:
    """All episodes of one seed; every decide() call is timed with perf_counter."""
    env = make_env(cfg.env_id, cfg.max_steps)
    policy.reset(seed)
    latencies: list[float] = []
    timing_sums: dict[str, float] = {}
    episodes = []
    for ep in range(cfg.episodes):
        env_seed = cfg.env_seed(seed, ep)
        obs, _ = env.reset(seed=env_seed)
        total, length, terminated = 0.0, 0, False
        for _ in range(cfg.max_steps):
            t0 = time.perf_counter()
            step = policy.decide(np.asarray(obs, dtype=np.float64))
            latencies.append((time.perf_counter() - t0) * 1e3)
            for k, v in step.timing.items():
                timing_sums[k] = timing_sums.get(k, 0.0) + float(v)
            action = _checked_action(step, env.action_space, f"seed {seed} episode {ep} step {length}")
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            length += 1
            if on_step is not None:
                on_step()
            if terminated or truncated:
                break
        episodes.append(EpisodeResult(
            episode=ep, env_seed=env_seed, episode_return=total, length=length, terminated=bool(terminated),
            normalized=float(normalized_return(total, cfg.env_id, cfg.max_steps))))
    env.close()
    n = max(len(latencies), 1)
    return SeedResult(seed=seed, episodes=episodes, latency_ms=[round(x, 5) for x in latencies],
                      timing_mean_ms={k: v / n for k, v in timing_sums.items()},
                      load_avg_1min=os.getloadavg()[0])


def collect_candidates(policy: Policy, states: np.ndarray, seed: int = 0) -> Candidates:
    """The policy's candidate set for each fixed state (Fig. 4)."""
    policy.reset(seed)
    trajs = []
    for s in states:
        step = policy.decide(s)
        if step.candidates is None:
            raise ValueError("the policy returned no candidates; Fig. 4 needs its (N, H, D) batch")
        trajs.append(np.round(np.asarray(step.candidates, dtype=np.float64), 5).tolist())
    return Candidates(states=states.tolist(), trajectories=trajs)


def evaluate(policy: Policy, method: str, cfg: EvalConfig, resume: MethodRun | None = None,
             checkpoint: Callable[[MethodRun], None] | None = None, training_seed: int | None = None) -> MethodRun:
    """Evaluate a policy over cfg.seeds x cfg.episodes, checkpointing after every seed.

    `resume` is a previous (partial) run of the same method and setting; its finished seeds
    are kept and skipped.
    """
    run = MethodRun(method=method, env_id=cfg.env_id, max_steps=cfg.max_steps,
                    setting=policy.setting(), host=host_info(), training_seed=training_seed)
    if resume is not None:
        if (resume.env_id, resume.max_steps, resume.setting, resume.host) != (
                run.env_id, run.max_steps, run.setting, run.host):
            raise ValueError(
                f"cannot resume {method!r}: the existing results were made with another env, max_steps, "
                "policy setting or host; write to a new --out file or use another --method label")
        done = {s.seed for s in resume.seeds if len(s.episodes) == cfg.episodes}
        run.seeds = [s for s in resume.seeds if s.seed in done]
        run.candidates = resume.candidates
    todo = [s for s in cfg.seeds if s not in {r.seed for r in run.seeds}]
    if run.candidates is None and cfg.candidate_states > 0:
        states = candidate_states(cfg.env_id, cfg.candidate_states, cfg.candidate_dataset)
        run.candidates = collect_candidates(policy, states)
    bar = tqdm(total=len(todo) * cfg.episodes * cfg.max_steps, desc=method, unit="step",
               disable=not cfg.progress, mininterval=2.0)
    try:
        for seed in todo:
            result = run_seed(policy, cfg, seed, on_step=lambda: bar.update(1))
            run.seeds = sorted(run.seeds + [result], key=lambda s: s.seed)
            bar.set_postfix(seed=seed, ret=f"{np.mean([e.normalized for e in result.episodes]):.3f}")
            if checkpoint is not None:
                checkpoint(run)
    finally:
        bar.close()
    return run
