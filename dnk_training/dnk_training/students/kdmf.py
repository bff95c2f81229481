"""KDM-F baseline: static spectral K = P diag(lambda) P_inv with eigenvalues inside the unit disk.

Complex-conjugate pairs act as 2x2 real blocks r [[cos t, -sin t], [sin t, cos t]] with r in (0, 1);
real eigenvalues are tanh(a) in (-1, 1). P_inv is a free matrix pushed toward P^-1 by
||P_inv P - I||_F^2 (weight l_inv). DNK generalizes this by making the modal gains state-dependent.
"""
from __future__ import annotations

import torch
from pydantic import Field, model_validator
from torch import nn

from dnk_training.losses import LossConfig, inv_loss
from dnk_training.configs import LayoutConfig
from dnk_training.students.common import StudentConfig
from dnk_training.students.kdm import StaticKoopmanStudent


class KDMFConfig(StudentConfig):
    """KDM-F: spectral split of the latent space into real modes and complex pairs."""

    num_real: int = Field(0, ge=0, description="real eigenvalues; the other latent_dim - num_real form 2x2 blocks")
    loss: LossConfig = LossConfig(l_act=0.0, l_gain=0.0, l_inv=1.0, w_min=1.0, w_max=1.0)

    @model_validator(mode="after")
    def _even_complex(self) -> "KDMFConfig":
        if (self.latent_dim - self.num_real) % 2 or self.num_real > self.latent_dim:
            raise ValueError(
                f"latent_dim - num_real must be even and >= 0 (got {self.latent_dim} - {self.num_real}); "
                "change num_real"
            )
        return self


class KDMFStudent(StaticKoopmanStudent):
    """z^_0 = P Lambda P_inv phi_T(x~_T)."""

    def __init__(self, layout: LayoutConfig, horizon: int, cfg: KDMFConfig = KDMFConfig()):
        super().__init__(layout, horizon, cfg)
        m = cfg.latent_dim
        self.P = nn.Parameter(torch.eye(m) + 0.01 * torch.randn(m, m))
        self.P_inv = nn.Parameter(torch.linalg.inv(self.P.detach()).contiguous())
        self.num_pairs = (m - cfg.num_real) // 2
        self.real_logit = nn.Parameter(torch.full((cfg.num_real,), 1.0))
        self.radius_logit = nn.Parameter(torch.full((self.num_pairs,), 2.0))  # r = sigmoid(2) ~ 0.88
        self.angle = nn.Parameter(0.1 * torch.randn(self.num_pairs))

    @torch.no_grad()
    def eigenvalues(self) -> torch.Tensor:
        """Complex eigenvalues of the diagonal factor (for tests and plots)."""
        r = torch.sigmoid(self.radius_logit)
        pairs = torch.polar(r, self.angle)
        real = torch.tanh(self.real_logit).to(pairs.dtype)
        return torch.cat([real, pairs, pairs.conj()])

    def spectral(self, y: torch.Tensor) -> torch.Tensor:
        """Apply Lambda to modal coordinates y [B, m] without building the matrix."""
        nr = self.cfg.num_real
        real = y[:, :nr] * torch.tanh(self.real_logit)
        c = y[:, nr:].reshape(y.shape[0], self.num_pairs, 2)
        r = torch.sigmoid(self.radius_logit)
        cos, sin = r * torch.cos(self.angle), r * torch.sin(self.angle)
        y1, y2 = c[..., 0], c[..., 1]
        rot = torch.stack([cos * y1 - sin * y2, sin * y1 + cos * y2], dim=-1)
        return torch.cat([real, rot.reshape(y.shape[0], -1)], dim=1)

    def transition(self, z_t: torch.Tensor) -> torch.Tensor:
        return self.spectral(z_t @ self.P_inv.T) @ self.P.T

    def regularizers(self) -> dict[str, torch.Tensor]:
        return {"inv": inv_loss(self.P_inv, self.P)}
