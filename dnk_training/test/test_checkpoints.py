import json

import numpy as np
import pytest
import torch

from dnk_training.checkpoints import CheckpointError, CheckpointManager, load_checkpoint, save_checkpoint
from dnk_training.configs import TaskConfig
from dnk_training.normalizer import Normalizer
from dnk_training.teacher import Teacher, train_teacher


def _train(cfg: TaskConfig, steps: int, run_dir, resume: bool) -> Teacher:
    cfg = cfg.model_copy(deep=True)
    cfg.teacher.train = cfg.teacher.train.model_copy(update={"steps": steps, "ckpt_every": 3, "log_every": 1})
    x = np.random.default_rng(0).normal(size=(64, 4, 23)).astype(np.float32)
    return train_teacher(cfg, x, Normalizer.fit(x.reshape(-1, 23)), run_dir, resume=resume, progress=False)


def test_resume_reproduces_uninterrupted_run(tiny_cfg: TaskConfig, tmp_path) -> None:
    full = _train(tiny_cfg, 6, tmp_path / "full", resume=False)
    _train(tiny_cfg, 3, tmp_path / "split", resume=False)          # "interrupted" after step 3
    resumed = _train(tiny_cfg, 6, tmp_path / "split", resume=True)  # continues from ckpt_00000003
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    # the logged losses of steps 4..6 match too (same batches, same noise)
    assert (tmp_path / "full" / "scalars.csv").read_text() == (tmp_path / "split" / "scalars.csv").read_text()


def test_resume_without_checkpoint_is_a_clear_error(tiny_cfg: TaskConfig, tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="holds no checkpoint"):
        _train(tiny_cfg, 3, tmp_path / "empty", resume=True)


def test_files_are_safetensors_and_json(tmp_path) -> None:
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters())
    net(torch.ones(1, 3)).sum().backward()
    opt.step()
    g = torch.Generator().manual_seed(3)
    save_checkpoint(tmp_path / "c", {"net": net}, {"step": 1}, {"adam": opt}, {"g": g})
    assert (tmp_path / "c.safetensors").read_bytes()[8:9] == b"{"  # safetensors header, not a pickle
    assert json.loads((tmp_path / "c.json").read_text())["step"] == 1
    net2, g2 = torch.nn.Linear(3, 2), torch.Generator()
    opt2 = torch.optim.Adam(net2.parameters())
    load_checkpoint(tmp_path / "c.json", {"net": net2}, {"adam": opt2}, {"g": g2})
    assert torch.equal(net.weight, net2.weight)
    assert torch.equal(opt.state_dict()["state"][0]["exp_avg"], opt2.state_dict()["state"][0]["exp_avg"])
    assert torch.equal(torch.rand(4, generator=g), torch.rand(4, generator=g2))
    with pytest.raises(CheckpointError, match="do not fit the model"):
        load_checkpoint(tmp_path / "c.json", {"net": torch.nn.Linear(4, 2)})
    with pytest.raises(CheckpointError, match="no weights for 'other'"):
        load_checkpoint(tmp_path / "c.json", {"other": net2})


def test_manager_keeps_newest(tmp_path) -> None:
    m = CheckpointManager(tmp_path, keep=2)
    net = torch.nn.Linear(2, 2)
    for step in (1, 2, 3):
        m.save(step, modules={"net": net}, meta={"step": step})
    assert [s for s, _ in m.list()] == [2, 3]
    assert m.latest().name == "ckpt_00000003.json"
    assert not (tmp_path / "ckpt_00000001.safetensors").exists()
