"""DNK distillation losses, equations (13)-(19) of docs method.md; every weight is a config field.

Per-sample terms return shape [B] (squared errors averaged over entries) so that the quality
weights of eq. (19) can weight samples; regularizers (17), (18) are scalars and not sample-weighted.
"""
from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field


class LossConfig(BaseModel):
    """Weights of the total loss (19) and the constants of (16), (17) and the quality weights."""

    model_config = ConfigDict(extra="forbid")

    l_rec: float = Field(1.0, ge=0, description="weight of L_rec (13), autoencoding of teacher targets")
    l_lat: float = Field(1.0, ge=0, description="weight of L_lat (14), latent transition consistency")
    l_pred: float = Field(1.0, ge=0, description="weight of L_pred (15), one-step prediction")
    l_act: float = Field(1.0, ge=0, description="weight of L_act (16), weighted action sequence")
    l_gain: float = Field(1.0, ge=0, description="weight of L_gain (17), modal-gain bound")
    l_inv: float = Field(1.0, ge=0, description="weight of L_inv (18), U/V (or P/P_inv) inverse penalty")
    w_first: float = Field(10.0, gt=0, description="w_0 of (16): weight of the executed first action")
    w_rest: float = Field(1.0, gt=0, description="w_h of (16) for h >= 1")
    rho: float = Field(1.0, gt=0, description="modal-gain bound of (17), dimensionless")
    entries: Literal["all", "free"] = Field(
        "all", description="what L_rec and L_pred average over: every entry of the tensor (all), or only the "
        "entries the student predicts (free: fixed context entries re-imposed first, so the autoencoder does not "
        "spend its code on known context and the loss is not diluted by it; the arm's tensor is 91 % context)")
    w_min: float = Field(0.5, ge=0, description="quality weight of the lowest-scored pair")
    w_max: float = Field(1.5, ge=0, description="quality weight of the highest-scored pair")


def per_sample_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared error averaged over every non-batch entry -> [B]."""
    return (pred - target).pow(2).reshape(pred.shape[0], -1).mean(dim=1)


def rec_loss(x_rec: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
    """(13) ||psi(phi(x^_0)) - x^_0||^2 per sample."""
    return per_sample_mse(x_rec, x0)


def lat_loss(z0_hat: torch.Tensor, z0_target: torch.Tensor, detach: bool = True) -> torch.Tensor:
    """(14) ||z^_0 - stopgrad(phi(x^_0))||^2 per sample; with detach (the method's) the target never
    receives gradient; KDM's reference trains both sides (detach=False)."""
    return per_sample_mse(z0_hat, z0_target.detach() if detach else z0_target)


def pred_loss(x_hat: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
    """(15) ||x^^_0 - x^_0||^2 per sample."""
    return per_sample_mse(x_hat, x0)


def act_loss(a_hat: torch.Tensor, a: torch.Tensor, w_first: float, w_rest: float, action_row: int) -> torch.Tensor:
    """(16) sum_h w_h ||a^^_h - a^_h||^2 / sum_h w_h per sample; a is [B, H, da].

    w_first weighs the row the planner executes (`layout.action.row`: 0 for locomotion, 1 for the
    arm, whose row 0 is the measured state re-imposed as context)."""
    err = (a_hat - a).pow(2).mean(dim=2)  # [B, H]
    w = torch.full((a.shape[1],), w_rest, dtype=a.dtype, device=a.device)
    w[action_row] = w_first
    return (err * w).sum(dim=1) / w.sum()


def gain_loss(g: torch.Tensor, rho: float) -> torch.Tensor:
    """(17) mean_i relu(|g_i| - rho)^2: zero while every modal gain stays inside the bound."""
    return torch.relu(g.abs() - rho).pow(2).mean()


def inv_loss(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """(18) ||left @ right - I||_F^2 (V U for FDK, P_inv P for KDM-F)."""
    prod = left @ right
    eye = torch.eye(prod.shape[0], dtype=prod.dtype, device=prod.device)
    return (prod - eye).pow(2).sum()


def weighted_total(
    terms: dict[str, torch.Tensor],
    weight: torch.Tensor,
    cfg: LossConfig,
    regs: dict[str, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """(19): sum_i w_i (sum_k l_k L_k)_i / sum_i w_i + sum_j l_j R_j.

    terms: per-sample losses keyed 'rec', 'lat', 'pred', 'act' (missing keys count as 0);
    regs: scalar regularizers keyed 'gain', 'inv'. Returns the total and float logs.
    """
    per_sample = torch.zeros_like(weight)
    logs: dict[str, float] = {}
    for key, value in terms.items():
        per_sample = per_sample + getattr(cfg, f"l_{key}") * value
        logs[key] = float((weight * value.detach()).sum() / weight.sum())
    total = (weight * per_sample).sum() / weight.sum()
    for key, value in (regs or {}).items():
        total = total + getattr(cfg, f"l_{key}") * value
        logs[key] = float(value.detach())
    return total, logs
