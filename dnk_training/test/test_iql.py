import numpy as np
import pytest
import torch

from dnk_training.configs import TaskConfig
from dnk_training.datasets import OfflineData
from dnk_training.iql import IQLCritic, expectile_loss, train_iql


def test_expectile_loss_known_case() -> None:
    diff = torch.tensor([1.0, -2.0])  # target - prediction
    # weights 0.7 (under-estimate) and 0.3 (over-estimate): (0.7 * 1 + 0.3 * 4) / 2
    assert expectile_loss(diff, 0.7).item() == pytest.approx(0.95)
    assert expectile_loss(diff, 0.5).item() == pytest.approx(0.5 * (1 + 4) / 2)
    # expectile > 0.5 is minimised above the mean: V moves toward the upper tail of Q
    target = torch.tensor([0.0, 0.0, 0.0, 10.0])
    v = torch.zeros((), requires_grad=True)
    opt = torch.optim.SGD([v], lr=0.1)
    for _ in range(500):
        opt.zero_grad()
        expectile_loss(target - v, 0.9).backward()
        opt.step()
    assert v.item() > target.mean().item()


def test_critic_prefers_rewarded_action(tiny_cfg: TaskConfig, tmp_path) -> None:
    """One-step bandit: reward = first action entry, episode ends; Q must rank +1 above -1."""
    rng = np.random.default_rng(0)
    n = 512
    obs = rng.normal(size=(n, 17)).astype(np.float32)
    act = rng.choice([-1.0, 1.0], size=(n, 6)).astype(np.float32)
    data = OfflineData(obs, act, act[:, 0].copy(), np.ones(n, bool), np.zeros(n, bool), obs.copy(), "bandit")
    cfg = tiny_cfg.model_copy(deep=True)
    cfg.iql.train = cfg.iql.train.model_copy(update={"steps": 300, "batch_size": 64, "ckpt_every": 300, "log_every": 100})
    critic = train_iql(cfg, data, tmp_path / "run", progress=False)
    s = torch.as_tensor(obs[:32])
    good = torch.ones(32, 6)
    bad = good.clone()
    bad[:, 0] = -1.0
    with torch.no_grad():
        assert (critic(s, good) > critic(s, bad)).float().mean() > 0.9
        assert critic(s, good).mean().item() == pytest.approx(1.0, abs=0.3)
    critic.save(tmp_path / "iql", step=300)
    again = IQLCritic.load(tmp_path / "iql.json")
    assert torch.equal(again(s, good), critic(s, good))
