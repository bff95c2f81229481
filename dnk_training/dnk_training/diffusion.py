"""DDPM noise schedule, forward noising and conditioning masks shared by teacher and classifier.

Step index t runs 0..K-1 (t = 0 least noisy). The classifier is trained on the same
``q_sample`` as the teacher so its gradients match the states the sampler visits.
"""
from __future__ import annotations

import math
from typing import Mapping

import torch

from .configs import LayoutConfig


def make_betas(steps: int, schedule: str = "cosine") -> torch.Tensor:
    if schedule == "linear":
        return torch.linspace(1e-4, 2e-2, steps, dtype=torch.float64)
    s = 0.008  # cosine schedule (Nichol & Dhariwal), as in Diffuser
    x = torch.linspace(0, steps, steps + 1, dtype=torch.float64)
    ac = torch.cos(((x / steps) + s) / (1 + s) * math.pi * 0.5) ** 2
    ac = ac / ac[0]
    return torch.clip(1 - ac[1:] / ac[:-1], 0, 0.999)


def ddim_update(x: torch.Tensor, x0: torch.Tensor, abar: torch.Tensor, abar_prev: torch.Tensor) -> torch.Tensor:
    """x_{t-1} of DDIM with eta = 0: the noise direction implied by (x_t, x0) carried to abar_prev."""
    eps = (x - abar.sqrt() * x0) / (1 - abar).sqrt()
    return abar_prev.sqrt() * x0 + (1 - abar_prev).sqrt() * eps


class Schedule(torch.nn.Module):
    """Precomputed DDPM coefficients as float32 buffers (saved with the model)."""

    def __init__(self, steps: int, schedule: str = "cosine") -> None:
        super().__init__()
        betas = make_betas(steps, schedule)
        alphas = 1 - betas
        ac = torch.cumprod(alphas, 0)
        ac_prev = torch.cat([torch.ones(1, dtype=torch.float64), ac[:-1]])
        post_var = betas * (1 - ac_prev) / (1 - ac)
        bufs = {
            "ac": ac,
            "ac_prev": ac_prev,
            "sqrt_ac": ac.sqrt(),
            "sqrt_1m_ac": (1 - ac).sqrt(),
            "post_coef_x0": betas * ac_prev.sqrt() / (1 - ac),
            "post_coef_xt": (1 - ac_prev) * alphas.sqrt() / (1 - ac),
            "post_std": post_var.clamp(min=1e-20).sqrt(),
            "guide_scale": (1 - ac) / ac.sqrt(),  # sigma_t^2 / alpha_t: grad of log p in x0 units
        }
        for k, v in bufs.items():
            self.register_buffer(k, v.float(), persistent=False)
        self.steps = steps

    @staticmethod
    def _at(buf: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return buf[t][:, None, None]

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return self._at(self.sqrt_ac, t) * x0 + self._at(self.sqrt_1m_ac, t) * noise

    def ddim(self, x0_hat: torch.Tensor, xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Deterministic DDIM (eta = 0) step from step t to t - 1 (x0_hat itself at t = 0)."""
        return ddim_update(xt, x0_hat, self._at(self.ac, t), self._at(self.ac_prev, t))

    def posterior(self, x0_hat: torch.Tensor, xt: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = self._at(self.post_coef_x0, t) * x0_hat + self._at(self.post_coef_xt, t) * xt
        return mean, self._at(self.post_std, t)


class Conditioning:
    """Which entries of (H, D) the context fixes, per the layout's ``fixed`` list."""

    def __init__(self, layout: LayoutConfig, horizon: int) -> None:
        self.layout = layout
        self.horizon = horizon
        mask = torch.zeros(horizon, layout.dim, dtype=torch.bool)
        for f in layout.fixed:
            sl = layout.column_slice(f.column)
            if f.rows == "first":
                mask[0, sl] = True
            else:
                mask[:, sl] = True
        self.mask = mask

    def apply(self, x: torch.Tensor, cond: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Return x with fixed entries replaced by ``cond[column]`` (normalized model space, shape (B, dim)).

        Keyed by column, not by context key: two columns fixed from one key (the arm's `q` offsets at row 0
        and its absolute `q_measured`) hold different values in the model's space."""
        x = x.clone()
        for f in self.layout.fixed:
            if f.column not in cond:
                raise ValueError(f"conditioning needs fixed column '{f.column}' (context key '{f.source}'); got "
                                 f"{sorted(cond)}")
            sl = self.layout.column_slice(f.column)
            v = cond[f.column].to(x)
            if v.shape != (x.shape[0], sl.stop - sl.start):
                raise ValueError(
                    f"fixed column '{f.column}' has shape {tuple(v.shape)}; expected ({x.shape[0]}, {sl.stop - sl.start}) (batch, column dim)"
                )
            if f.rows == "first":
                x[:, 0, sl] = v
            else:
                x[:, :, sl] = v[:, None, :]
        return x

    def cond_from(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Read the context back out of an already conditioned tensor (e.g. a prior or a data window)."""
        out = {}
        for f in self.layout.fixed:
            out[f.column] = x[:, 0, self.layout.column_slice(f.column)].clone()
        return out

    def reimpose(self, x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """Copy fixed entries from ``reference`` (same shape) into x."""
        m = self.mask.to(x.device)
        return torch.where(m, reference, x)
