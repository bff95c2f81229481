"""Consistency-model baselines (Song et al. 2023) on the teacher's discrete DDPM schedule.

f(x_n, n) = sqrt(abar_n) x_n + sqrt(1 - abar_n) F(x_n, n) is the EDM boundary parametrization
(c_skip, c_out with sigma_data = 1) rewritten in variance-preserving coordinates: abar_0 = 1 gives
f(x, 0) = x exactly. One-step generation evaluates f at n = K on the conditioned prior.
- CD distills the teacher's probability-flow ODE: the target is f_ema at x_n obtained from x_{n+1}
  by one deterministic DDIM step of the teacher (``teacher_step``).
- CT needs no teacher: x_n and x_{n+1} share the same noise draw on real data windows.
The training noise is scaled by a temperature drawn like the priors' tau, so the one-step input
at n = K matches the tau-scaled priors the planner builds.
"""
from __future__ import annotations

from typing import Callable, Literal

import torch
from pydantic import Field

from dnk_training.losses import LossConfig, per_sample_mse, weighted_total
from dnk_training.configs import LayoutConfig
from dnk_training.diffusion import ddim_update
from dnk_training.students.common import Student, StudentConfig, ema_copy, mlp
from dnk_training.unet import sinusoidal_embedding

TeacherStep = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""(x_n [B,H,D] with fixed entries set, per-sample n [B] in 1..K) -> x_{n-1}: one deterministic teacher ODE step."""


class ConsistencyConfig(StudentConfig):
    """CD / CT settings; hidden/depth are shared with the Koopman students for an equal budget."""

    ema_decay: float = Field(0.95, ge=0, lt=1, description="EMA decay mu of the target network")
    time_embed: int = Field(32, ge=2, description="sinusoidal embedding size of the step index")
    temperatures: dict[float, float] = Field(
        default_factory=lambda: {0.5: 0.5, 0.75: 0.3, 1.0: 0.2},
        description="noise temperature tau -> probability for the training noise (same as the priors)",
    )
    loss: LossConfig = LossConfig(w_min=1.0, w_max=1.0)


def ddim_step(x0_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], abar: torch.Tensor) -> TeacherStep:
    """Deterministic DDIM step (the probability-flow ODE discretized on the DDPM grid).

    abar: [K + 1] cumulative alphas with abar[0] = 1 (index n = teacher step n - 1);
    x0_fn(x_n, n) is the teacher's clean-trajectory prediction at per-sample grid indices n [B] in 1..K.
    """

    def step(x: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        return ddim_update(x, x0_fn(x, n), abar[n][:, None, None], abar[n - 1][:, None, None])

    return step


def step_embedding(frac: torch.Tensor, size: int) -> torch.Tensor:
    """Embedding of a step fraction in [0, 1] -> [B, size]."""
    return sinusoidal_embedding(1000.0 * frac, size, max_period=1000.0, endpoint=False)


class ConsistencyStudent(Student):
    """One-step consistency model f(x, n); mode 'cd' (needs teacher_step) or 'ct'."""

    def __init__(
        self,
        layout: LayoutConfig,
        horizon: int,
        abar: torch.Tensor,
        cfg: ConsistencyConfig = ConsistencyConfig(),
        mode: Literal["cd", "ct"] = "cd",
        teacher_step: TeacherStep | None = None,
    ):
        super().__init__(layout, horizon)
        if abar.ndim != 1 or abs(float(abar[0]) - 1.0) > 1e-6:
            raise ValueError("abar must be the [K+1] cumulative-alpha grid with abar[0] = 1 (prepend 1 to the teacher's)")
        self.cfg = cfg
        self.mode = mode
        self.teacher_step = teacher_step
        self.K = abar.shape[0] - 1
        self.register_buffer("abar", abar.to(torch.float32).clone())
        n = self.horizon * self.dim
        self.net = mlp(n + cfg.time_embed, n, cfg.hidden, cfg.depth)
        self.target_net = ema_copy(self.net)
        self.register_buffer("emb_K", step_embedding(torch.ones(1), cfg.time_embed))
        taus = sorted(cfg.temperatures)
        self.register_buffer("taus", torch.tensor(taus))
        self.register_buffer("tau_p", torch.tensor([cfg.temperatures[t] for t in taus]))

    def f(self, net, x: torch.Tensor, abar: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """Consistency function with per-sample abar [B] and step embedding [B, E]."""
        flat = self.flat(x)
        out = net(torch.cat([flat, emb], dim=1))
        y = abar.sqrt()[:, None] * flat + (1 - abar).sqrt()[:, None] * out
        return self.reimpose(self.unflat(y), x)

    def forward(self, prior: torch.Tensor) -> torch.Tensor:
        b = prior.shape[0]
        abar = self.abar[self.K].expand(b)
        return self.f(self.net, prior, abar, self.emb_K.expand(b, -1))

    def losses(self, prior, target, weight, window):
        x0 = target if self.mode == "cd" else window
        b = x0.shape[0]
        n = torch.randint(0, self.K, (b,))
        tau = self.taus[torch.multinomial(self.tau_p, b, replacement=True)]
        z = torch.randn_like(x0) * tau[:, None, None]
        a1, a0 = self.abar[n + 1], self.abar[n]
        x1 = self.reimpose(a1.sqrt()[:, None, None] * x0 + (1 - a1).sqrt()[:, None, None] * z, x0)
        with torch.no_grad():
            if self.mode == "cd":
                if self.teacher_step is None:
                    raise ValueError("mode 'cd' needs teacher_step (the teacher's ODE step); pass ddim_step(...)")
                xn = self.reimpose(self.teacher_step(x1, n + 1), x0)
            else:
                xn = self.reimpose(a0.sqrt()[:, None, None] * x0 + (1 - a0).sqrt()[:, None, None] * z, x0)
            target_f = self.f(self.target_net, xn, a0, step_embedding(n.float() / self.K, self.cfg.time_embed))
        pred_f = self.f(self.net, x1, a1, step_embedding((n + 1).float() / self.K, self.cfg.time_embed))
        return weighted_total({"pred": per_sample_mse(pred_f, target_f)}, weight, self.cfg.loss)

    @torch.no_grad()
    def after_step(self) -> None:
        mu = self.cfg.ema_decay
        for p_t, p in zip(self.target_net.parameters(), self.net.parameters()):
            p_t.mul_(mu).add_(p.detach(), alpha=1 - mu)
