"""One resumable training loop shared by teacher, classifier and IQL.

Each model supplies ``step_fn(step) -> {tag: value}`` (one gradient step, all randomness from
the registered generators); the loop owns progress, CSV logging and periodic checkpoints so
``--resume`` behaves the same for every model.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from tqdm import tqdm

from .checkpoints import CheckpointManager, load_checkpoint
from .configs import TrainConfig
from .logging_utils import CSVLogger


@dataclass
class TrainState:
    """Everything a resume must restore: weights, optimizers, RNG streams."""

    modules: dict[str, torch.nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    generators: dict[str, torch.Generator]
    meta: dict[str, Any] = field(default_factory=dict)


def run_training(
    name: str,
    state: TrainState,
    step_fn: Callable[[int], dict[str, float]],
    cfg: TrainConfig,
    run_dir: str | Path,
    resume: bool = False,
    progress: bool = True,
) -> int:
    """Run steps [start, cfg.steps); returns the step count reached. Checkpoints go to run_dir/checkpoints."""
    run_dir = Path(run_dir)
    manager = CheckpointManager(run_dir / "checkpoints", keep=cfg.keep_checkpoints)
    start = 0
    if resume:
        latest = manager.latest()
        if latest is None:
            raise FileNotFoundError(f"--resume given but {manager.dir} holds no checkpoint; run without --resume to start fresh")
        start = int(load_checkpoint(latest, state.modules, state.optimizers, state.generators)["step"])
    logger = CSVLogger(run_dir / "scalars.csv", resume_step=start if resume else None)
    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, desc=name, disable=not progress, mininterval=5)
    running: dict[str, float] = {}
    count = 0
    for step in bar:
        scalars = step_fn(step)
        for k, v in scalars.items():
            running[k] = running.get(k, 0.0) + float(v)
        count += 1
        done = step + 1
        if done % cfg.log_every == 0 or done == cfg.steps:
            means = {f"{name}/{k}": v / count for k, v in running.items()}
            logger.log(done, means)
            bar.set_postfix({k.split("/")[-1]: f"{v:.4g}" for k, v in means.items()})
            running, count = {}, 0
        if done % cfg.ckpt_every == 0 or done == cfg.steps:
            manager.save(
                done,
                modules=state.modules,
                meta=dict(state.meta, step=done),
                optimizers=state.optimizers,
                generators=state.generators,
            )
    return cfg.steps
