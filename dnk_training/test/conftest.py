"""Shared fixtures: small generated D4RL-layout HDF5 files and a tiny task config (no ../shared)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from dnk_training.configs import CONFIG_DIR, TaskConfig, load_task_config
from training_testing import make_arrays, write_hdf5


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
