"""KDM-F baseline: static spectral K = P diag(lambda) P^-1 with every eigenvalue inside the unit disk.

Complex-conjugate pairs act as 2x2 real blocks r [[cos t, -sin t], [sin t, cos t]] with r in (0, 1);
real eigenvalues are tanh(a) in (-1, 1). P^-1 is the exact inverse of the free matrix P (not a second
matrix pushed toward it), so the materialized K is similar to Lambda and its spectral radius is
max |lambda| < 1 by construction; it is logged as `spectral_radius` from K itself. The ONNX export
carries K materialized, because ONNX has no matrix inverse. DNK generalizes this by making the
modal gains state-dependent.
"""
from __future__ import annotations

import torch
from pydantic import Field, model_validator
from torch import nn

from dnk_training.configs import LayoutConfig
from dnk_training.losses import LossConfig
from dnk_training.students.kdm import KDMConfig, StaticKoopmanStudent


class KDMFConfig(KDMConfig):
    """KDM-F: spectral split of the latent space into real modes and complex pairs."""

    num_real: int = Field(0, ge=0, description="real eigenvalues; the other latent_dim - num_real form 2x2 blocks")
    loss: LossConfig = LossConfig(l_act=0.0, l_gain=0.0, l_inv=0.0, w_min=1.0, w_max=1.0)

    @model_validator(mode="after")
    def _even_complex(self) -> "KDMFConfig":
        if (self.latent_dim - self.num_real) % 2 or self.num_real > self.latent_dim:
            raise ValueError(
                f"latent_dim - num_real must be even and >= 0 (got {self.latent_dim} - {self.num_real}); "
                "change num_real"
            )
        return self


class KDMFStudent(StaticKoopmanStudent):
    """z^_0 = P Lambda P^-1 phi_T(x~_T)."""

    def __init__(self, layout: LayoutConfig, horizon: int, cfg: KDMFConfig = KDMFConfig()):
        super().__init__(layout, horizon, cfg)
        m = cfg.latent_dim
        self.P = nn.Parameter(torch.eye(m) + 0.01 * torch.randn(m, m))
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

    def operator(self) -> torch.Tensor:
        """The materialized K = P Lambda P^-1 [m, m]."""
        return self.P @ self.spectral(torch.linalg.inv(self.P).T).T

    def transition(self, z_t: torch.Tensor) -> torch.Tensor:
        return self.spectral(torch.linalg.solve(self.P, z_t.T).T) @ self.P.T

    def regularizers(self) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
        with torch.no_grad():
            radius = float(torch.linalg.eigvals(self.operator()).abs().max())
        return {}, {"spectral_radius": radius}

    def export_module(self) -> nn.Module:
        return _MaterializedKoopman(self)


class _MaterializedKoopman(nn.Module):
    """The KDM-F student with K = P Lambda P^-1 as a constant matrix: what ONNX can express."""

    def __init__(self, student: KDMFStudent) -> None:
        super().__init__()
        self.student = student
        with torch.no_grad():
            self.register_buffer("K", student.operator().detach().clone())

    def forward(self, prior: torch.Tensor) -> torch.Tensor:
        return self.student.predict(prior, lambda z: z @ self.K.T)
