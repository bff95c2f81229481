"""KDM baseline (static Koopman distillation): separate encoders, one dense global K."""
from __future__ import annotations

import torch
from torch import nn

from dnk_training.losses import LossConfig, lat_loss, weighted_total
from dnk_training.configs import LayoutConfig
from dnk_training.students.common import Student, StudentConfig, mlp


class KDMConfig(StudentConfig):
    """KDM: losses L_rec + L_lat + L_pred, unweighted samples (w_min = w_max = 1) as in the original."""

    loss: LossConfig = LossConfig(l_act=0.0, l_gain=0.0, l_inv=0.0, w_min=1.0, w_max=1.0)


class StaticKoopmanStudent(Student):
    """Shared by KDM and KDM-F: separate encoders phi_T / phi_0, a static latent transition, psi.

    Subclasses define `transition` (z_T -> z^_0) and may add scalar regularizers.
    """

    def __init__(self, layout: LayoutConfig, horizon: int, cfg: StudentConfig):
        super().__init__(layout, horizon)
        self.cfg = cfg
        n = self.horizon * self.dim
        self.phi_t = mlp(n, cfg.latent_dim, cfg.hidden, cfg.depth)
        self.phi_0 = mlp(n, cfg.latent_dim, cfg.hidden, cfg.depth)
        self.psi = mlp(cfg.latent_dim, n, cfg.hidden, cfg.depth)

    def transition(self, z_t: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def regularizers(self) -> dict[str, torch.Tensor]:
        return {}

    def forward(self, prior: torch.Tensor) -> torch.Tensor:
        z0 = self.transition(self.phi_t(self.flat(prior)))
        return self.reimpose(self.unflat(self.psi(z0)), prior)

    def losses(self, prior, target, weight, window):
        z0_hat = self.transition(self.phi_t(self.flat(prior)))
        x_hat = self.reimpose(self.unflat(self.psi(z0_hat)), prior)
        z0 = self.phi_0(self.flat(target))
        rec, pred = self.entry_losses(self.unflat(self.psi(z0)), x_hat, target, self.cfg.loss.entries)
        terms = {"rec": rec, "lat": lat_loss(z0_hat, z0), "pred": pred}
        return weighted_total(terms, weight, self.cfg.loss, self.regularizers())


class KDMStudent(StaticKoopmanStudent):
    """z^_0 = K phi_T(x~_T), x^^_0 = psi(z^_0)."""

    def __init__(self, layout: LayoutConfig, horizon: int, cfg: KDMConfig = KDMConfig()):
        super().__init__(layout, horizon, cfg)
        self.K = nn.Parameter(torch.eye(cfg.latent_dim))

    def transition(self, z_t: torch.Tensor) -> torch.Tensor:
        return z_t @ self.K.T
