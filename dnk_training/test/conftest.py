"""Shared fixtures: small generated D4RL-layout HDF5 files and a tiny task config (no ../shared)."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import yaml

from dnk_training.configs import CONFIG_DIR, TaskConfig, load_task_config


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


@pytest.fixture
def small_hdf5(tmp_path: Path) -> Path:
    return write_hdf5(tmp_path / "small.hdf5", make_arrays([30, 25, 20], terminal_last=True))


def tiny_config_dict(dataset_path: str = "unused.hdf5") -> dict:
    """halfcheetah layout (17 + 6, H = 4) with tiny networks and few steps, for fast tests."""
    raw = yaml.safe_load((CONFIG_DIR / "halfcheetah.yaml").read_text())
    base = raw["base"]
    base["dataset"]["path"] = dataset_path
    tiny_unet = {"model_dim": 8, "dim_mult": [1, 2], "kernel_size": 3}
    base["teacher"].update(unet=tiny_unet, diffusion={"steps": 5}, ema_decay=0.9, ema_start=2,
                           train={"steps": 6, "batch_size": 16, "lr": 1e-3, "log_every": 2, "ckpt_every": 3})
    base["classifier"].update(unet=tiny_unet, train={"steps": 6, "batch_size": 16, "lr": 1e-3, "log_every": 2, "ckpt_every": 3})
    base["iql"].update(hidden=[32, 32], train={"steps": 20, "batch_size": 32, "lr": 1e-3, "log_every": 10, "ckpt_every": 10})
    base["sampling"]["num_candidates"] = 4
    return {"base": base, "presets": {"small": {}}}


@pytest.fixture
def tiny_yaml(tmp_path: Path, small_hdf5: Path) -> Path:
    p = tmp_path / "tiny.yaml"
    p.write_text(yaml.safe_dump(tiny_config_dict(str(small_hdf5))))
    return p


@pytest.fixture
def tiny_cfg(tiny_yaml: Path) -> TaskConfig:
    return load_task_config(str(tiny_yaml), "small")


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)
