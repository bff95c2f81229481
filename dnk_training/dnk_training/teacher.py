"""Diffusion teacher: DDPM over trajectory windows with an x0-predicting temporal U-Net.

Public API used by pair generation (part 2):

    teacher = Teacher.load("artifacts/halfcheetah/teacher.json")
    prior = teacher.make_prior({"obs": obs_n}, temperature=0.5, generator=g)   # (B, H, D)
    x0 = teacher.sample(prior, cond=None, guidance_weight=1e-4, generator=g, classifier=clf)

``sample`` runs the full K-step reverse process starting FROM the given prior (normalized,
fixed entries already set) and re-imposes the fixed entries at every step, so the same prior
and generator state give the same x0.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Mapping

import numpy as np
import torch
from torch import nn

from .checkpoints import load_checkpoint, read_meta, save_checkpoint
from .configs import TaskConfig
from .diffusion import Conditioning, Schedule
from .normalizer import Normalizer
from .trainer import TrainState, run_training
from .unet import TemporalUNet

if TYPE_CHECKING:
    from .classifier import ReturnClassifier

Sampler = Literal["ddpm", "ddim"]


class Teacher(nn.Module):
    def __init__(self, cfg: TaskConfig, normalizer: Normalizer) -> None:
        super().__init__()
        self.cfg = cfg
        self.normalizer = normalizer
        self.horizon = cfg.dataset.horizon
        self.dim = cfg.layout.dim
        if normalizer.dim != self.dim:
            raise ValueError(f"normalizer has {normalizer.dim} columns but the layout has D={self.dim}")
        u = cfg.teacher.unet
        self.model = TemporalUNet(self.horizon, self.dim, u.model_dim, u.dim_mult, u.kernel_size)
        self.ema = copy.deepcopy(self.model).requires_grad_(False)
        self.schedule = Schedule(cfg.teacher.diffusion.steps, cfg.teacher.diffusion.beta_schedule)
        self.conditioning = Conditioning(cfg.layout, self.horizon)
        weights = torch.ones(self.horizon, self.dim)
        act = cfg.layout.column_slice(cfg.layout.action.column)
        weights[cfg.layout.action.row, act] = cfg.teacher.first_action_weight
        self.register_buffer("loss_weights", weights, persistent=False)

    @property
    def steps(self) -> int:
        return self.schedule.steps

    def loss(self, x0: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Weighted x0-prediction MSE on a batch of normalized windows (B, H, D)."""
        b = x0.shape[0]
        t = torch.randint(0, self.steps, (b,), generator=generator)
        noise = torch.randn(x0.shape, generator=generator)
        xt = self.conditioning.reimpose(self.schedule.q_sample(x0, t, noise), x0)
        pred = self.conditioning.reimpose(self.model(xt, t), x0)
        return ((pred - x0) ** 2 * self.loss_weights).mean()

    @torch.no_grad()
    def update_ema(self, step: int) -> None:
        decay = 0.0 if step < self.cfg.teacher.ema_start else self.cfg.teacher.ema_decay
        for pe, pm in zip(self.ema.parameters(), self.model.parameters()):
            pe.lerp_(pm, 1 - decay)

    def make_prior(self, cond: Mapping[str, torch.Tensor], temperature: float, generator: torch.Generator | None = None) -> torch.Tensor:
        """Conditioned prior x~_T = tau * eps with the fixed entries set from ``cond`` (normalized, (B, dim))."""
        b = next(iter(cond.values())).shape[0]
        eps = torch.randn((b, self.horizon, self.dim), generator=generator)
        return self.conditioning.apply(temperature * eps, cond)

    def sample(
        self,
        prior: torch.Tensor,
        cond: Mapping[str, torch.Tensor] | None = None,
        guidance_weight: float = 0.0,
        generator: torch.Generator | None = None,
        classifier: "ReturnClassifier | None" = None,
        noise_scale: float = 1.0,
        sampler: Sampler = "ddpm",
    ) -> torch.Tensor:
        """Full K-step reverse process from ``prior`` (B, H, D, normalized); returns x0 (B, H, D).

        ``cond`` (context key -> normalized (B, dim)) overrides the fixed entries; None reads them
        from the prior. ``guidance_weight`` > 0 needs ``classifier`` (gradient ascent on its
        predicted return, in x0 units). ``noise_scale`` scales the per-step noise (1 = DDPM).
        ``sampler`` "ddim" runs the deterministic DDIM (eta = 0) on the same K steps: one target
        per prior, the generator unused.
        """
        if sampler not in ("ddpm", "ddim"):
            raise ValueError(f"sampler {sampler!r}: choose 'ddpm' (stochastic) or 'ddim' (deterministic, eta = 0)")
        if prior.ndim != 3 or prior.shape[1:] != (self.horizon, self.dim):
            raise ValueError(f"prior has shape {tuple(prior.shape)}; expected (B, {self.horizon}, {self.dim}) normalized")
        if guidance_weight > 0 and classifier is None:
            raise ValueError("guidance_weight > 0 needs a ReturnClassifier (classifier=...); pass guidance_weight=0 to sample unguided")
        x = prior.float() if cond is None else self.conditioning.apply(prior.float(), cond)
        fixed_ref = x.clone()
        b = x.shape[0]
        for i in reversed(range(self.steps)):
            t = torch.full((b,), i, dtype=torch.long)
            if sampler == "ddim":
                x = self.ddim_step(x, t, guidance_weight, classifier).detach()
                continue
            x0_hat = self.conditioning.reimpose(self.predict_x0(x, t, guidance_weight, classifier), fixed_ref)
            mean, std = self.schedule.posterior(x0_hat, x, t)
            if i > 0:
                mean = mean + noise_scale * std * torch.randn(x.shape, generator=generator)
            x = self.conditioning.reimpose(mean, fixed_ref).detach()
        return x

    def ddim_step(self, x: torch.Tensor, t: torch.Tensor, guidance_weight: float = 0.0,
                  classifier: "ReturnClassifier | None" = None) -> torch.Tensor:
        """One deterministic DDIM (eta = 0) step from t to t - 1 (B,), the fixed entries kept from x:
        `sample(sampler="ddim")` is K of these, and the exported teacher is exactly this step."""
        x0_hat = self.conditioning.reimpose(self.predict_x0(x, t, guidance_weight, classifier), x)
        return self.conditioning.reimpose(self.schedule.ddim(x0_hat, x, t), x)

    def predict_x0(self, x: torch.Tensor, t: torch.Tensor, guidance_weight: float = 0.0,
                   classifier: "ReturnClassifier | None" = None) -> torch.Tensor:
        """EMA x0-prediction at steps t (B,), classifier-guided and clipped: one reverse step's
        estimate, shared by `sample` and the consistency students' probability-flow ODE step."""
        with torch.no_grad():
            x0_hat = self.ema(x, t)
        if guidance_weight > 0:
            with torch.enable_grad():
                xg = x.detach().requires_grad_(True)
                grad = torch.autograd.grad(classifier(xg, t).sum(), xg)[0]
            x0_hat = x0_hat + guidance_weight * self.schedule.guide_scale[t].view(-1, 1, 1) * grad
        clip = self.cfg.teacher.diffusion.clip_x0
        return x0_hat if clip is None else x0_hat.clamp(-clip, clip)

    def meta(self) -> dict:
        return {"kind": "teacher", "task_config": self.cfg.model_dump(), "normalizer": self.normalizer.to_dict()}

    def save(self, prefix: str | Path, step: int) -> Path:
        """Export the EMA weights (what sampling uses) + config + normalizer."""
        return save_checkpoint(prefix, {"ema": self.ema}, dict(self.meta(), step=step))

    @classmethod
    def load(cls, path: str | Path) -> "Teacher":
        meta = read_meta(path)
        if meta.get("kind") != "teacher":
            raise ValueError(f"{path} is a '{meta.get('kind')}' checkpoint, not a teacher")
        t = cls(TaskConfig.model_validate(meta["task_config"]), Normalizer.from_dict(meta["normalizer"]))
        modules = {"ema": t.ema} if "ema" in meta["_modules"] and "model" not in meta["_modules"] else {"model": t.model, "ema": t.ema}
        load_checkpoint(path, modules)
        return t.eval()


def train_teacher(
    cfg: TaskConfig, windows_x: np.ndarray, normalizer: Normalizer, run_dir: str | Path, resume: bool = False, progress: bool = True
) -> Teacher:
    """Train on raw windows (M, H, D); checkpoints + scalars.csv under run_dir."""
    tc = cfg.teacher.train
    torch.manual_seed(tc.seed)
    teacher = Teacher(cfg, normalizer)
    data = torch.as_tensor(normalizer.normalize(windows_x))
    opt = torch.optim.Adam(teacher.model.parameters(), lr=tc.lr)
    gen = torch.Generator().manual_seed(tc.seed)
    state = TrainState({"model": teacher.model, "ema": teacher.ema}, {"adam": opt}, {"train": gen}, teacher.meta())

    def step_fn(step: int) -> dict[str, float]:
        idx = torch.randint(0, data.shape[0], (tc.batch_size,), generator=gen)
        loss = teacher.loss(data[idx], gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        teacher.update_ema(step)
        return {"loss": loss.item()}

    run_training("teacher", state, step_fn, tc, run_dir, resume=resume, progress=progress)
    return teacher.eval()
