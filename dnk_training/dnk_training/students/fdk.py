"""DNK student with the Factorized Dynamic Koopman layer, eqs. (10)-(12).

z_T = phi(x~_T); z^_0 = U (g(z_T) * (V z_T)); x^^_0 = psi(z^_0), fixed entries re-imposed.
One encoder phi serves priors and teacher targets so both live in one latent space.
"""
from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from dnk_training.losses import (
    LossConfig,
    act_loss,
    gain_loss,
    inv_loss,
    lat_loss,
    weighted_total,
)
from dnk_training.configs import LayoutConfig
from dnk_training.students.common import KoopmanConfig, Student, latent, mlp


class FDKConfig(KoopmanConfig):
    """FDK architecture + loss weights (defaults of method.md)."""

    rank: int | None = Field(
        None, ge=1, description="r, number of Koopman modes (r <= latent_dim); None = latent_dim. With r < m, "
        "z^_0 lies in span(U) while the target phi(x^_0) does not: an irreducible floor on L_lat (logged as lat_floor)")
    gain_hidden: int = Field(128, ge=8, description="width of the modal-gain network g")
    separate_encoders: bool = Field(
        False, description="a study switch, not the method: encode the teacher targets with a second encoder "
        "phi_0 (as KDM does) instead of method.md's one phi shared with the priors")
    loss: LossConfig = LossConfig()


class FDKStudent(Student):
    """phi -> FDK transition -> psi."""

    encoder, decoder = "phi", "psi"

    def __init__(self, layout: LayoutConfig, horizon: int, cfg: FDKConfig = FDKConfig()):
        super().__init__(layout, horizon)
        if cfg.rank is None:
            cfg = cfg.model_copy(update={"rank": cfg.latent_dim})
        if cfg.rank > cfg.latent_dim:
            raise ValueError(f"rank ({cfg.rank}) must be <= latent_dim ({cfg.latent_dim})")
        self.cfg = cfg
        n = self.horizon * self.dim
        self.phi = mlp(n, cfg.latent_dim, cfg.hidden, cfg.depth)
        self.psi = mlp(cfg.latent_dim, n, cfg.hidden, cfg.depth)
        if cfg.separate_encoders:
            self.phi_0 = mlp(n, cfg.latent_dim, cfg.hidden, cfg.depth)
        self.gain = mlp(cfg.latent_dim, cfg.rank, cfg.gain_hidden, 1)
        # Start from orthonormal U with V = U^T (L_inv = 0) and unit gains: K(z) = U U^T, a projection.
        q, _ = torch.linalg.qr(torch.randn(cfg.latent_dim, cfg.rank))
        self.U = nn.Parameter(q.contiguous())
        self.V = nn.Parameter(q.T.contiguous())
        last = self.gain[-1]
        nn.init.zeros_(last.weight)
        nn.init.ones_(last.bias)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return latent(self.phi(self.flat(x)), self.cfg)

    def encode_target(self, x: torch.Tensor) -> torch.Tensor:
        """phi(x^_0): the shared encoder, or phi_0 with separate_encoders."""
        return latent(self.phi_0(self.flat(x)), self.cfg) if self.cfg.separate_encoders else self.encode(x)

    def transition(self, z_t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(11): returns z^_0 and the modal gains g(z_T)."""
        g = self.gain(z_t)
        return (g * (z_t @ self.V.T)) @ self.U.T, g

    def operator(self, z_t: torch.Tensor) -> torch.Tensor:
        """K(z_T) = U diag(g(z_T)) V as explicit [B, m, m] matrices (for analysis and tests)."""
        g = self.gain(z_t)
        return torch.einsum("mr,br,rn->bmn", self.U, g, self.V)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.unflat(self.psi(z))

    def latents(self, prior: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(z^_0, phi(x^_0)): the two sides of L_lat, for diagnostics."""
        return self.transition(self.encode(prior))[0], self.encode_target(target)

    def forward(self, prior: torch.Tensor) -> torch.Tensor:
        z0, _ = self.transition(self.encode(prior))
        return self.reimpose(self.decode(z0), prior)

    def losses(self, prior, target, weight, window):
        c = self.cfg.loss
        z_t = self.encode(prior)
        z0_hat, g = self.transition(z_t)
        x_hat = self.reimpose(self.decode(z0_hat), prior)
        z0 = self.encode_target(target)
        x_rec = self.decode(z0)
        a = self.action_cols
        rec, pred = self.entry_losses(x_rec, x_hat, target, c.entries)
        terms = {
            "rec": rec,
            "lat": lat_loss(z0_hat, z0),
            "pred": pred,
            "act": act_loss(x_hat[..., a], target[..., a], c.w_first, c.w_rest, self.action_row),
        }
        regs = {"gain": gain_loss(g, c.rho), "inv": inv_loss(self.V, self.U)}
        total, logs = weighted_total(terms, weight, c, regs)
        logs["lat_floor"] = self.latent_floor(z0)
        return total, logs

    @torch.no_grad()
    def latent_floor(self, z0: torch.Tensor) -> float:
        """The part of L_lat no transition can remove: mean squared distance of the latent targets
        from span(U) (0 at full rank)."""
        if self.cfg.rank >= self.cfg.latent_dim:
            return 0.0
        coef = torch.linalg.lstsq(self.U, z0.T).solution                      # (r, B)
        return float((z0 - (self.U @ coef).T).pow(2).mean())
