"""Shared pieces of every one-step student: MLPs, fixed-entry re-imposition, the training step.

All students map a conditioned prior x~_T [B, H, D] (normalized, fixed entries set) to a trajectory
[B, H, D] in one network call, so the planner runtime can treat them interchangeably.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from dnk_training.configs import LayoutConfig, TrainConfig
from dnk_training.diffusion import Conditioning
from dnk_training.losses import pred_loss, rec_loss
from dnk_training.trainer import TrainState


def locomotion_layout(obs_dim: int = 17, act_dim: int = 6) -> LayoutConfig:
    """Locomotion layout of docs/interfaces.md: rows [obs, act], obs at row 0 fixed, act at row 0 executed."""
    return LayoutConfig.model_validate(
        {
            "columns": [{"name": "obs", "dim": obs_dim}, {"name": "act", "dim": act_dim}],
            "fixed": [{"column": "obs", "rows": "first", "source": "obs"}],
            "action": {"column": "act", "row": 0},
        }
    )


class StudentConfig(BaseModel):
    """Architecture fields shared by all students (kept equal across methods for a fair budget)."""

    model_config = ConfigDict(extra="forbid")

    latent_dim: int = Field(64, ge=2, description="m, latent dimension of Koopman students")
    hidden: int = Field(256, ge=8, description="width of every MLP hidden layer")
    depth: int = Field(2, ge=1, description="hidden layers per MLP")


class KoopmanConfig(StudentConfig):
    """Fields shared by the Koopman students (FDK, KDM, KDM-F)."""

    latent_norm: bool = Field(
        False, description="layer-normalize every encoder output (no affine): each latent has zero mean and unit "
        "variance over its m entries. Fixes the latent scale, which no loss of method.md fixes (FDK's target latents "
        "grew to a mean square ~5000 on Walker2d). False = method.md and the baselines' references as written; "
        "config/distill.yaml turns it on for FDK (reports/table1: the latent-norm studies)")


def latent(z: torch.Tensor, cfg: KoopmanConfig) -> torch.Tensor:
    """An encoder's output as the latent the transition sees: layer-normalized with `latent_norm`."""
    return nn.functional.layer_norm(z, (cfg.latent_dim,)) if cfg.latent_norm else z


def mlp(d_in: int, d_out: int, hidden: int, depth: int) -> nn.Sequential:
    """Plain SiLU MLP: small, fast on CPU, and ONNX-friendly."""
    layers: list[nn.Module] = []
    d = d_in
    for _ in range(depth):
        layers += [nn.Linear(d, hidden), nn.SiLU()]
        d = hidden
    layers.append(nn.Linear(d, d_out))
    return nn.Sequential(*layers)


def _column_runs(columns: torch.Tensor) -> list[tuple[bool, int, int]]:
    """(selected?, start, stop) of each run of equal entries of a (D,) bool mask, in column order."""
    edges = [0] + [c for c in range(1, len(columns)) if columns[c] != columns[c - 1]] + [len(columns)]
    return [(bool(columns[a]), a, b) for a, b in zip(edges[:-1], edges[1:])]


class FreeOutputs(nn.Module):
    """A decoder's last Linear reduced to the trajectory columns a student does not overwrite with its
    prior at every row (`Student.reimpose`); the others come out as 0. The student computes the same
    function: the arm's decoder then computes 7 of its 84 columns (the rest are goal and obstacle
    context). The output is put together by a concatenation along columns: a gather took onnxruntime
    1.2 ms per batch of 64, longer than the whole layer it saved (0.97 ms float)."""

    def __init__(self, linear: nn.Linear, fixed: torch.Tensor) -> None:
        super().__init__()
        horizon, dim = fixed.shape
        free = ~fixed.all(dim=0)                                              # (D,) columns computed
        rows = (torch.arange(horizon)[:, None] * dim + free.nonzero().squeeze(1)[None, :]).reshape(-1)
        self.weight = nn.Parameter(linear.weight.detach()[rows].clone(), requires_grad=False)
        self.bias = nn.Parameter(linear.bias.detach()[rows].clone(), requires_grad=False)
        self.horizon, self.width = horizon, int(free.sum())
        self.runs = _column_runs(free)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        y = nn.functional.linear(h, self.weight, self.bias).reshape(h.shape[0], self.horizon, self.width)
        pieces, start = [], 0
        for computed, a, b in self.runs:
            if computed:
                pieces.append(y[:, :, start:start + b - a])
                start += b - a
            else:
                pieces.append(y.new_zeros((h.shape[0], self.horizon, b - a)))
        return torch.cat(pieces, dim=2).reshape(h.shape[0], -1)


class ContextOnce(nn.Module):
    """An encoder's first Linear reading each column fixed at every row once, from row 0: such a column
    holds the same context value at every row of a prior (the layout's contract, which the planner's
    priors and the pairs keep), so its H row weights are summed into one. The arm's encoder then reads
    224 + 77 inputs instead of 2688; for priors that keep the contract the function is the same."""

    def __init__(self, linear: nn.Linear, fixed: torch.Tensor) -> None:
        super().__init__()
        horizon, dim = fixed.shape
        context = fixed.all(dim=0)
        w = linear.weight.detach().reshape(-1, horizon, dim)
        self.weight = nn.Parameter(w[:, :, ~context].reshape(w.shape[0], -1).clone(), requires_grad=False)
        self.context_weight = nn.Parameter(w[:, :, context].sum(dim=1).clone(), requires_grad=False)
        self.bias = nn.Parameter(linear.bias.detach().clone(), requires_grad=False)
        self.horizon, self.dim = horizon, dim
        self.runs = _column_runs(context)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], self.horizon, self.dim)
        planned = torch.cat([x[:, :, a:b] for ctx, a, b in self.runs if not ctx], dim=2).reshape(x.shape[0], -1)
        context = torch.cat([x[:, 0, a:b] for ctx, a, b in self.runs if ctx], dim=1)
        return nn.functional.linear(planned, self.weight, self.bias) + nn.functional.linear(context, self.context_weight)


class Student(nn.Module):
    """Base class: holds the layout mask and re-imposes fixed entries so known context never moves.

    `encoder` / `decoder`: the names of the MLPs that read the flattened prior and write the flattened
    trajectory (before `reimpose`), when a student has them: export serves them cut to what the
    layout leaves free (export.serving_module)."""

    encoder: str | None = None
    decoder: str | None = None

    def __init__(self, layout: LayoutConfig, horizon: int):
        super().__init__()
        self.layout = layout
        self.horizon = horizon
        self.dim = layout.dim
        self.register_buffer("fixed", Conditioning(layout, horizon).mask.clone())
        self.free_fraction = float((~self.fixed).float().mean())  # of the tensor's entries, for entries=free
        self.action_cols = layout.column_slice(layout.action.column)
        self.action_row = layout.action.row
        self.noise = torch.Generator().manual_seed(0)  # training noise; registered in the TrainState for exact resume

    def reimpose(self, x: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        return torch.where(self.fixed, prior, x)

    def entry_losses(self, x_rec: torch.Tensor, x_hat: torch.Tensor, target: torch.Tensor,
                     entries: str) -> tuple[torch.Tensor, torch.Tensor]:
        """L_rec (13) and L_pred (15) per sample, averaged over every entry or only the free ones
        (LossConfig.entries); x_hat has its fixed entries re-imposed already."""
        if entries == "all":
            return rec_loss(x_rec, target), pred_loss(x_hat, target)
        return (rec_loss(self.reimpose(x_rec, target), target) / self.free_fraction,
                pred_loss(x_hat, target) / self.free_fraction)

    def flat(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], self.horizon * self.dim)

    def unflat(self, v: torch.Tensor) -> torch.Tensor:
        return v.reshape(v.shape[0], self.horizon, self.dim)

    def forward(self, prior: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def losses(
        self, prior: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, window: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, float]]:  # pragma: no cover - abstract
        """Total loss for a batch of pairs (+ the real data windows for data-only methods)."""
        raise NotImplementedError

    def after_step(self) -> None:
        """Hook after each optimizer step (EMA targets of consistency models)."""

    def export_module(self) -> nn.Module:
        """What ONNX traces: the student itself, unless its forward uses an op ONNX lacks."""
        return self


@dataclass
class PairTensors:
    """Training arrays as tensors: priors, teacher targets, quality weights, real data windows."""

    prior: torch.Tensor
    target: torch.Tensor
    weight: torch.Tensor
    window: torch.Tensor

    def __len__(self) -> int:
        return int(self.prior.shape[0])


def make_state(model: Student, cfg: TrainConfig, meta: dict) -> TrainState:
    """Adam + the batch and training-noise generators as a resumable TrainState for
    dnk_training.trainer.run_training (every random draw of a student step comes from these two)."""
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    model.noise.manual_seed(cfg.seed + 1)
    return TrainState(modules={"student": model}, optimizers={"adam": opt},
                      generators={"batches": gen, "noise": model.noise}, meta=meta)


def make_step_fn(model: Student, data: PairTensors, cfg: TrainConfig, state: TrainState, grad_clip: float = 1.0):
    """One gradient step on a random batch; cosine LR decay to 10% over cfg.steps."""
    opt = state.optimizers["adam"]
    gen = state.generators["batches"]

    def step_fn(step: int) -> dict[str, float]:
        model.train()
        idx = torch.randint(0, len(data), (cfg.batch_size,), generator=gen)
        lr = cfg.lr * (0.1 + 0.45 * (1 + math.cos(math.pi * min(step / cfg.steps, 1.0))))
        for group in opt.param_groups:
            group["lr"] = lr
        loss, parts = model.losses(data.prior[idx], data.target[idx], data.weight[idx], data.window[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()
        model.after_step()
        return {"loss": float(loss.detach()), **parts}

    return step_fn


def ema_copy(model: nn.Module) -> nn.Module:
    """Frozen copy used as a consistency target network."""
    target = copy.deepcopy(model)
    for p in target.parameters():
        p.requires_grad_(False)
    return target
