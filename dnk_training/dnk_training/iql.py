"""IQL critic (Kostrikov et al. 2022): twin Q(s, a), V(s) by expectile regression, target-Q polyak.

Only the critic is trained (no policy extraction): the planner uses Q(s0, a0) of a candidate's
first row as its selector. Inputs are raw env units; the observation normalizer is stored as
buffers inside the module so an ONNX export takes raw obs/act as the manifest requires.
"""
from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from .checkpoints import load_checkpoint, read_meta, save_checkpoint
from .configs import TaskConfig
from .datasets import OfflineData
from .normalizer import Normalizer
from .trainer import TrainState, run_training


def expectile_loss(diff: torch.Tensor, expectile: float) -> torch.Tensor:
    """mean(|tau - 1(diff < 0)| * diff^2) with diff = target - prediction."""
    weight = torch.where(diff < 0, 1.0 - expectile, expectile)
    return (weight * diff**2).mean()


def mlp(d_in: int, hidden: list[int], d_out: int = 1) -> nn.Sequential:
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(d_in, h), nn.ReLU()]
        d_in = h
    return nn.Sequential(*layers, nn.Linear(d_in, d_out))


class IQLCritic(nn.Module):
    def __init__(self, cfg: TaskConfig, obs_normalizer: Normalizer, act_dim: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.obs_normalizer = obs_normalizer
        ds = obs_normalizer.dim
        self.register_buffer("obs_mean", torch.as_tensor(obs_normalizer.mean))
        self.register_buffer("obs_std", torch.as_tensor(obs_normalizer.std))
        h = cfg.iql.hidden
        self.q1, self.q2, self.v = mlp(ds + act_dim, h), mlp(ds + act_dim, h), mlp(ds, h)
        self.target_q1 = copy.deepcopy(self.q1).requires_grad_(False)
        self.target_q2 = copy.deepcopy(self.q2).requires_grad_(False)
        self.act_dim = act_dim

    def _s(self, obs: torch.Tensor) -> torch.Tensor:
        return (obs - self.obs_mean) / self.obs_std

    def qs(self, obs: torch.Tensor, act: torch.Tensor, target: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        sa = torch.cat([self._s(obs), act], dim=-1)
        q1, q2 = (self.target_q1, self.target_q2) if target else (self.q1, self.q2)
        return q1(sa).squeeze(-1), q2(sa).squeeze(-1)

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Q(s, a) = min of the twin target-free heads, raw env units in, (B,) out."""
        return torch.minimum(*self.qs(obs, act))

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.v(self._s(obs)).squeeze(-1)

    def losses(self, obs, act, rew, next_obs, done) -> tuple[torch.Tensor, torch.Tensor]:
        """(V expectile loss, Q TD loss) for one batch of transitions."""
        c = self.cfg.iql
        with torch.no_grad():
            q_t = torch.minimum(*self.qs(obs, act, target=True))
        v_loss = expectile_loss(q_t - self.value(obs), c.expectile)
        with torch.no_grad():
            target = rew + c.discount * (1.0 - done) * self.value(next_obs)
        q1, q2 = self.qs(obs, act)
        q_loss = ((q1 - target) ** 2).mean() + ((q2 - target) ** 2).mean()
        return v_loss, q_loss

    @torch.no_grad()
    def update_target(self) -> None:
        tau = self.cfg.iql.polyak
        for tgt, src in ((self.target_q1, self.q1), (self.target_q2, self.q2)):
            for pt, ps in zip(tgt.parameters(), src.parameters()):
                pt.lerp_(ps, tau)

    def meta(self) -> dict:
        return {
            "kind": "iql",
            "task_config": self.cfg.model_dump(),
            "obs_normalizer": self.obs_normalizer.to_dict(),
            "act_dim": self.act_dim,
        }

    def save(self, prefix: str | Path, step: int) -> Path:
        return save_checkpoint(prefix, {"iql": self}, dict(self.meta(), step=step))

    @classmethod
    def load(cls, path: str | Path) -> "IQLCritic":
        meta = read_meta(path)
        if meta.get("kind") != "iql":
            raise ValueError(f"{path} is a '{meta.get('kind')}' checkpoint, not an IQL critic")
        c = cls(TaskConfig.model_validate(meta["task_config"]), Normalizer.from_dict(meta["obs_normalizer"]), int(meta["act_dim"]))
        load_checkpoint(path, {"iql": c})
        return c.eval()


def train_iql(cfg: TaskConfig, data: OfflineData, run_dir: str | Path, resume: bool = False, progress: bool = True) -> IQLCritic:
    """Train on flat transitions; ``done`` is the terminal flag only (timeouts bootstrap)."""
    tc = cfg.iql.train
    torch.manual_seed(tc.seed)
    critic = IQLCritic(cfg, Normalizer.fit(data.observations), data.act_dim)
    obs = torch.as_tensor(data.observations)
    act = torch.as_tensor(data.actions)
    rew = torch.as_tensor(data.rewards)
    nxt = torch.as_tensor(data.next_observations)
    done = torch.as_tensor(data.terminals, dtype=torch.float32)
    q_opt = torch.optim.Adam([*critic.q1.parameters(), *critic.q2.parameters()], lr=tc.lr)
    v_opt = torch.optim.Adam(critic.v.parameters(), lr=tc.lr)
    gen = torch.Generator().manual_seed(tc.seed)
    state = TrainState({"iql": critic}, {"q": q_opt, "v": v_opt}, {"train": gen}, critic.meta())

    def step_fn(step: int) -> dict[str, float]:
        idx = torch.randint(0, obs.shape[0], (tc.batch_size,), generator=gen)
        v_loss, q_loss = critic.losses(obs[idx], act[idx], rew[idx], nxt[idx], done[idx])
        v_opt.zero_grad(set_to_none=True)
        v_loss.backward()
        v_opt.step()
        q_opt.zero_grad(set_to_none=True)
        q_loss.backward()
        q_opt.step()
        critic.update_target()
        return {"v_loss": v_loss.item(), "q_loss": q_loss.item()}

    run_training("iql", state, step_fn, tc, run_dir, resume=resume, progress=progress)
    return critic.eval()
