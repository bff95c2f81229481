"""Evaluation results file (JSON): what one `dnk-eval d4rl` run measured, mergeable across runs.

One file holds a list of method runs; each is one policy on one env under one setting, with
one block per seed (episode returns, normalized returns, every per-step decision latency).
Raw per-step latencies are kept, not summaries, so that merged files give exact p95s.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

FORMAT = "dnk-eval-results"
FORMAT_VERSION = 1


class EpisodeResult(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    episode: int = Field(ge=0, description="episode index within the seed")
    env_seed: int = Field(description="seed passed to env.reset for this episode")
    episode_return: float = Field(alias="return", description="undiscounted return, env reward units")
    normalized: float = Field(description="D4RL-normalized return (x1)")
    length: int = Field(ge=0, description="control steps taken (<= max_steps)")
    terminated: bool = Field(description="True when the env signalled termination (e.g. a fall)")


class SeedResult(BaseModel):
    seed: int = Field(description="evaluation seed: planner/teacher RNG seed and env seed base")
    episodes: list[EpisodeResult]
    latency_ms: list[float] = Field(description="decision latency of every control step, ms, in order")
    timing_mean_ms: dict[str, float] = Field(
        default_factory=dict, description="mean of the policy's own timing breakdown (prior/inference/scoring)"
    )
    load_avg_1min: float | None = Field(None, description="host 1-min load average when the seed finished (latency context)")


class Candidates(BaseModel):
    """N candidates for a fixed set of states (Fig. 4 input); same states for every method."""

    states: list[list[float]] = Field(description="(S, obs_dim) raw observations")
    trajectories: list[list[list[list[float]]]] = Field(description="(S, N, H, D) raw candidate trajectories")


class MethodRun(BaseModel):
    """One method on one env under one setting: the unit of Table I rows."""

    method: str = Field(description="Table I row label, e.g. 'DNK (IQL)'")
    env_id: str = Field(description="gymnasium env id, e.g. HalfCheetah-v5")
    max_steps: int = Field(ge=1, description="control steps per episode at most")
    setting: dict[str, Any] = Field(description="policy and planner settings; runs merge only when equal")
    training_seed: int | None = Field(None, description="training seed of the evaluated model; a Table I row pools "
                                      "its training seeds (None: one model, e.g. the teacher)")
    host: dict[str, str] = Field(default_factory=dict, description="where latencies were measured")
    seeds: list[SeedResult] = Field(default_factory=list)
    candidates: Candidates | None = None

    @property
    def key(self) -> tuple[str, str, int | None]:
        return (self.env_id, self.method, self.training_seed)


class ResultsFile(BaseModel):
    format: str = FORMAT
    format_version: int = FORMAT_VERSION
    runs: list[MethodRun] = Field(default_factory=list)


def load_results(path: str | Path) -> ResultsFile:
    """Read and validate a results file; errors name the file and the fix."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError as e:
        raise ValueError(f"results file {path} not found; produce it with `dnk-eval d4rl --out {path}`") from e
    except json.JSONDecodeError as e:
        raise ValueError(f"results file {path} is not valid JSON ({e}); rerun the evaluation") from e
    if not isinstance(raw, dict) or raw.get("format") != FORMAT or raw.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path}: not a {FORMAT} v{FORMAT_VERSION} file (format={raw.get('format') if isinstance(raw, dict) else None!r}); "
            "pass files written by `dnk-eval d4rl` or `dnk-eval merge`"
        )
    try:
        return ResultsFile.model_validate(raw)
    except ValidationError as e:
        raise ValueError(f"{path}: invalid results ({e.errors()[0]['loc']}: {e.errors()[0]['msg']})") from e


def save_results(results: ResultsFile, path: str | Path) -> Path:
    """Atomic write (tmp + rename): an interrupted run never leaves a half-written checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(results.model_dump(mode="json", by_alias=True)) + "\n")
    os.replace(tmp, path)
    return path


def merge_runs(runs: Iterable[MethodRun]) -> ResultsFile:
    """Merge method runs: same (env, method) must have the same setting and disjoint seeds."""
    merged: dict[tuple[str, str], MethodRun] = {}
    for run in runs:
        have = merged.get(run.key)
        if have is None:
            merged[run.key] = run.model_copy(deep=True)
            continue
        if have.setting != run.setting or have.max_steps != run.max_steps:
            raise ValueError(
                f"method {run.method!r} on {run.env_id} (training seed {run.training_seed}): runs with different settings "
                f"(max_steps {have.max_steps} vs {run.max_steps}, setting {have.setting} vs {run.setting}); "
                "give them different --method labels or rerun with one setting"
            )
        if have.host != run.host:
            raise ValueError(
                f"method {run.method!r} on {run.env_id}: latencies from different hosts "
                f"({have.host} vs {run.host}) cannot be pooled; label the runs differently"
            )
        dup = {s.seed for s in have.seeds} & {s.seed for s in run.seeds}
        if dup:
            raise ValueError(
                f"method {run.method!r} on {run.env_id}: seed(s) {sorted(dup)} appear in two files; "
                "drop one of the files or rerun with other --seeds"
            )
        have.seeds = sorted(have.seeds + run.seeds, key=lambda s: s.seed)
        if have.candidates is None:
            have.candidates = run.candidates
    return ResultsFile(runs=list(merged.values()))


def merge_files(paths: Iterable[str | Path]) -> ResultsFile:
    """Merge results files (`dnk-eval merge`)."""
    return merge_runs(run for p in paths for run in load_results(p).runs)
