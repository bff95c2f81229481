"""KDM baseline (static Koopman distillation, azencot-group/KDM): separate encoders, one dense
global K with bias, Gaussian latent noise during training, no stop-gradient.

Losses as the reference defines them: latent ||phi_0(x^_0) - K(phi_T(x~_T) + n_T)||^2, reconstruction
of x^_0 from phi_0(x^_0) + n_0, and the push reconstruction of x^_0 from K(phi_T(x~_T) + n_T), with
n ~ N(0, sigma_z^2 I) and sigma_z = `latent_noise` (0.4 in the reference). The reference also adds
noise at sampling; here the planner's priors carry the randomness and the exported model stays
deterministic per prior (parity-checked), so sampling noise is not used.
"""
from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from dnk_training.configs import LayoutConfig
from dnk_training.losses import LossConfig, lat_loss, weighted_total
from dnk_training.students.common import KoopmanConfig, Student, latent, mlp


class KDMConfig(KoopmanConfig):
    """KDM: L_rec + L_lat + L_pred (push), unweighted samples (w_min = w_max = 1) as in the reference."""

    latent_noise: float = Field(0.4, ge=0, description="std of the Gaussian noise on both latents during "
                                "training, latent units (reference: 0.4)")
    stop_grad_latent: bool = Field(False, description="detach phi_0(x^_0) in L_lat (the reference does not)")
    loss: LossConfig = LossConfig(l_act=0.0, l_gain=0.0, l_inv=0.0, w_min=1.0, w_max=1.0)


class StaticKoopmanStudent(Student):
    """Shared by KDM and KDM-F: separate encoders phi_T / phi_0, a static latent transition, psi.

    Subclasses define `transition` (z_T -> z^_0) and may add scalar regularizers and logs.
    """

    encoder, decoder = "phi_t", "psi"

    def __init__(self, layout: LayoutConfig, horizon: int, cfg: KDMConfig):
        super().__init__(layout, horizon)
        self.cfg = cfg
        n = self.horizon * self.dim
        self.phi_t = mlp(n, cfg.latent_dim, cfg.hidden, cfg.depth)
        self.phi_0 = mlp(n, cfg.latent_dim, cfg.hidden, cfg.depth)
        self.psi = mlp(cfg.latent_dim, n, cfg.hidden, cfg.depth)

    def transition(self, z_t: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def regularizers(self) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
        """(scalar loss terms, extra logs)."""
        return {}, {}

    def encode_prior(self, prior: torch.Tensor) -> torch.Tensor:
        """phi_T(x~_T) as the transition sees it (`latent_norm` applied)."""
        return latent(self.phi_t(self.flat(prior)), self.cfg)

    def encode_target(self, target: torch.Tensor) -> torch.Tensor:
        """phi_0(x^_0) as L_lat and the reconstruction see it (`latent_norm` applied)."""
        return latent(self.phi_0(self.flat(target)), self.cfg)

    def _noisy(self, z: torch.Tensor) -> torch.Tensor:
        if self.cfg.latent_noise == 0:
            return z
        return z + self.cfg.latent_noise * torch.randn(z.shape, generator=self.noise, dtype=z.dtype)

    def forward(self, prior: torch.Tensor) -> torch.Tensor:
        return self.predict(prior, self.transition)

    def latents(self, prior: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(K phi_T(x~_T), phi_0(x^_0)) without the training noise: the two sides of L_lat, for diagnostics."""
        return self.transition(self.encode_prior(prior)), self.encode_target(target)

    def predict(self, prior: torch.Tensor, transition) -> torch.Tensor:
        """x^^_0 = psi(transition(phi_T(x~_T))), fixed entries re-imposed."""
        return self.reimpose(self.unflat(self.psi(transition(self.encode_prior(prior)))), prior)

    def losses(self, prior, target, weight, window):
        z0_pushed = self.transition(self._noisy(self.encode_prior(prior)))
        x_push = self.reimpose(self.unflat(self.psi(z0_pushed)), prior)
        z0 = self.encode_target(target)
        x_rec = self.unflat(self.psi(self._noisy(z0)))
        rec, pred = self.entry_losses(x_rec, x_push, target, self.cfg.loss.entries)
        terms = {"rec": rec, "lat": lat_loss(z0_pushed, z0, detach=self.cfg.stop_grad_latent), "pred": pred}
        regs, extra = self.regularizers()
        total, logs = weighted_total(terms, weight, self.cfg.loss, regs)
        return total, {**logs, **extra}


class KDMStudent(StaticKoopmanStudent):
    """z^_0 = K phi_T(x~_T) + b, x^^_0 = psi(z^_0) (K starts at the identity, b at 0)."""

    def __init__(self, layout: LayoutConfig, horizon: int, cfg: KDMConfig = KDMConfig()):
        super().__init__(layout, horizon, cfg)
        self.K = nn.Linear(cfg.latent_dim, cfg.latent_dim)
        nn.init.eye_(self.K.weight)
        nn.init.zeros_(self.K.bias)

    def transition(self, z_t: torch.Tensor) -> torch.Tensor:
        return self.K(z_t)
