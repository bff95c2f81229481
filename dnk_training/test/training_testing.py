"""Data helpers for dnk_training's tests (a plain module: test files import it by name,
which `from conftest import ...` cannot do safely when several packages have a conftest.py)."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np


def make_arrays(episode_lengths: list[int], obs_dim: int = 17, act_dim: int = 6, terminal_last: bool = False, seed: int = 0) -> dict[str, np.ndarray]:
    """Random transitions; each episode ends in a timeout (or a terminal for the last one)."""
    rng = np.random.default_rng(seed)
    n = sum(episode_lengths)
    obs = rng.normal(size=(n, obs_dim)).astype(np.float32)
    terminals = np.zeros(n, bool)
    timeouts = np.zeros(n, bool)
    ends = np.cumsum(episode_lengths) - 1
    timeouts[ends] = True
    if terminal_last:
        timeouts[ends[-1]] = False
        terminals[ends[-1]] = True
    return {
        "observations": obs,
        "actions": rng.uniform(-1, 1, size=(n, act_dim)).astype(np.float32),
        "rewards": rng.normal(size=n).astype(np.float32),
        "terminals": terminals,
        "timeouts": timeouts,
        "next_observations": np.roll(obs, -1, axis=0),
    }


def write_hdf5(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    with h5py.File(path, "w") as f:
        for k, v in arrays.items():
            f.create_dataset(k, data=v)
    return path
