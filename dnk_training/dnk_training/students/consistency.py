"""Consistency-model baselines (Song et al. 2023; improved CT, Song & Dhariwal 2023) as CleanDiffuser
runs them: the EDM parametrization in variance-exploding coordinates x_sigma = x0 + sigma * z,

  f(x, sigma) = c_skip(sigma) x + c_out(sigma) F(c_in(sigma) x, c_noise(sigma)),
  c_skip = sd^2 / (sd^2 + (sigma - sigma_min)^2), c_out = sd (sigma - sigma_min) / sqrt(sd^2 + sigma^2),
  c_in = 1 / sqrt(sd^2 + sigma^2), c_noise = ln(sigma) / 4, sd = sigma_data,

so f(x, sigma_min) = x exactly. Fixed (context) entries enter F unscaled and are re-imposed.
- CD distills the teacher's probability-flow ODE on the teacher's own grid, mapped to
  sigma_n = sqrt((1 - abar_n) / abar_n) (sigma_min = 0: the grid ends at the clean trajectory): the
  target is the target network (EMA of the online one) at x_n, one deterministic DDIM step of the
  teacher from x_{n+1}. A DDPM teacher only knows its own discrete levels, so CleanDiffuser's
  18-step Karras grid cannot be used for it; the teacher's 20 levels take its place.
- CT needs no teacher: Karras grid (sigma_min 0.002, sigma_max 80, rho 7) with the improved-CT
  curriculum N(k) = min(s0 2^floor(k / K'), s1) + 1, lognormal level sampling (P_mean, P_std),
  weights 1 / (sigma_{i+1} - sigma_i), pseudo-Huber loss with c = 0.00054 sqrt(d), and the target
  at x_i = stop-gradient of the online network (target_decay 0); x_i and x_{i+1} share one noise draw.
Both keep a slow EMA of the online network (`ema_decay`) that the planner runs. One-step generation
evaluates that EMA at sigma_max on the prior scaled to it: the planner's prior tau * eps becomes
sigma_max * tau * eps. The training noise is scaled by a temperature drawn like the priors' tau, so
that one-step input matches the priors the planner builds. All noise comes from the student's
registered generator and the curriculum step is a saved buffer, so a resumed run is exact.
"""
from __future__ import annotations

import math
from typing import Callable, Literal

import torch
from pydantic import Field

from dnk_training.configs import LayoutConfig
from dnk_training.diffusion import ddim_update
from dnk_training.losses import LossConfig, per_sample_mse, weighted_total
from dnk_training.students.common import Student, StudentConfig, ema_copy, mlp
from dnk_training.unet import sinusoidal_embedding

TeacherStep = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""(x_n [B,H,D] in VP coordinates, fixed entries set; per-sample n [B] in 1..K) -> x_{n-1}: one
deterministic teacher ODE step."""


class ConsistencyConfig(StudentConfig):
    """CD / CT settings; hidden/depth are shared with the Koopman students for an equal budget."""

    sigma_data: float = Field(0.5, gt=0, description="EDM sigma_data, normalized data units")
    sigma_min: float = Field(0.002, gt=0, description="CT: smallest noise level of the Karras grid")
    sigma_max: float = Field(80.0, gt=0, description="CT: largest noise level (one-step generation level)")
    rho: float = Field(7.0, gt=0, description="CT: Karras grid exponent")
    s0: int = Field(10, ge=1, description="CT curriculum: initial discretization steps")
    s1: int = Field(1280, ge=1, description="CT curriculum: final discretization steps")
    curriculum_steps: int | None = Field(None, ge=1, description="CT curriculum length in gradient steps "
                                         "(CleanDiffuser's curriculum_cycle); None = the run's train.steps")
    p_mean: float = Field(-1.1, description="CT: mean of the lognormal noise-level distribution (ln sigma)")
    p_std: float = Field(2.0, gt=0, description="CT: std of the lognormal noise-level distribution (ln sigma)")
    metric: Literal["l2", "pseudo_huber"] = Field(
        "pseudo_huber", description="consistency distance: squared L2 per entry, or pseudo-Huber "
        "sqrt(||a - b||^2 + c^2) - c with c = 0.00054 sqrt(H * D) (improved CT)")
    target_decay: float = Field(0.0, ge=0, lt=1, description="EMA rate of the target network "
                                "(CD: 0.95 as in Song et al.; improved CT: 0, the stop-gradient online network)")
    ema_decay: float = Field(0.9999, ge=0, lt=1, description="EMA rate of the network the planner runs "
                             "(CleanDiffuser: 0.9999; short runs need less)")
    time_embed: int = Field(32, ge=2, description="sinusoidal embedding size of c_noise")
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


def karras_grid(n: int, sigma_min: float, sigma_max: float, rho: float) -> torch.Tensor:
    """n noise levels from sigma_min to sigma_max (EDM eq. 5)."""
    i = torch.arange(n, dtype=torch.float64) / max(n - 1, 1)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return ((lo + i * (hi - lo)) ** rho).float()


def ct_discretization(step: int, total: int, s0: int, s1: int) -> int:
    """Improved-CT curriculum: grid points at training step `step` of `total`."""
    k_prime = max(1, math.floor(total / (math.log2(math.floor(s1 / s0)) + 1)))
    return min(s0 * 2 ** (step // k_prime), s1) + 1


class ConsistencyStudent(Student):
    """One-step consistency model f(x, sigma); mode 'cd' (needs teacher_step) or 'ct'."""

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
        self.register_buffer("abar", abar.to(torch.float32).clone())
        self.register_buffer("teacher_sigma", ((1 - self.abar) / self.abar).sqrt())  # [K + 1], 0 at n = 0
        self.sigma_floor = 0.0 if mode == "cd" else cfg.sigma_min
        self.sigma_top = float(self.teacher_sigma[-1]) if mode == "cd" else cfg.sigma_max
        self.register_buffer("step", torch.zeros((), dtype=torch.long))  # curriculum position, saved for resume
        n = self.horizon * self.dim
        self.net = mlp(n + cfg.time_embed, n, cfg.hidden, cfg.depth)
        self.ema_net = ema_copy(self.net)
        self.target_net = ema_copy(self.net) if cfg.target_decay > 0 else None
        taus = sorted(cfg.temperatures)
        self.register_buffer("taus", torch.tensor(taus))
        self.register_buffer("tau_p", torch.tensor([cfg.temperatures[t] for t in taus]))
        self.huber_c = 0.00054 * math.sqrt(n)

    def f(self, net, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """Consistency function at per-sample sigma [B]; x holds the clean context in its fixed entries."""
        sd, s = self.cfg.sigma_data, sigma[:, None]
        c_skip = sd**2 / (sd**2 + (s - self.sigma_floor) ** 2)
        c_out = sd * (s - self.sigma_floor) / (sd**2 + s**2).sqrt()
        c_in = 1 / (sd**2 + s**2).sqrt()
        flat = self.flat(x)
        inp = torch.where(self.fixed.reshape(1, -1), flat, c_in * flat)
        c_noise = 0.25 * sigma.clamp(min=1e-3).log()  # ln(0) never reaches the embedding (CD's clean end)
        emb = sinusoidal_embedding(250.0 * (c_noise + 2.0), self.cfg.time_embed, max_period=1000.0, endpoint=False)
        y = c_skip * flat + c_out * net(torch.cat([inp, emb], dim=1))
        return self.reimpose(self.unflat(y), x)

    def forward(self, prior: torch.Tensor) -> torch.Tensor:
        b = prior.shape[0]
        x = self.reimpose(self.sigma_top * prior, prior)
        return self.f(self.ema_net, x, torch.full((b,), self.sigma_top))

    def _levels(self, b: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per sample: the grid index i (CD: the teacher's), sigma_i and sigma_{i+1}."""
        if self.mode == "cd":
            n = torch.randint(0, self.abar.shape[0] - 1, (b,), generator=self.noise)
            return n, self.teacher_sigma[n], self.teacher_sigma[n + 1]
        c = self.cfg
        total = c.curriculum_steps or 1
        grid = karras_grid(ct_discretization(int(self.step), total, c.s0, c.s1), c.sigma_min, c.sigma_max, c.rho)
        erf = torch.special.erf((grid.log() - c.p_mean) / (math.sqrt(2) * c.p_std))
        i = torch.multinomial(erf[1:] - erf[:-1], b, replacement=True, generator=self.noise)
        return i, grid[i], grid[i + 1]

    def losses(self, prior, target, weight, window):
        x0 = target if self.mode == "cd" else window
        b = x0.shape[0]
        idx, s_lo, s_hi = self._levels(b)
        tau = self.taus[torch.multinomial(self.tau_p, b, replacement=True, generator=self.noise)]
        z = torch.randn(x0.shape, generator=self.noise) * tau[:, None, None]
        x_hi = self.reimpose(x0 + s_hi[:, None, None] * z, x0)
        with torch.no_grad():
            if self.mode == "cd":
                if self.teacher_step is None:
                    raise ValueError("mode 'cd' needs teacher_step (the teacher's ODE step); pass ddim_step(...)")
                a_hi, a_lo = self.abar[idx + 1][:, None, None], self.abar[idx][:, None, None]
                vp = self.reimpose(a_hi.sqrt() * x_hi, x0)  # VE -> the teacher's VP coordinates
                x_lo = self.reimpose(self.teacher_step(vp, idx + 1) / a_lo.sqrt(), x0)
            else:
                x_lo = self.reimpose(x0 + s_lo[:, None, None] * z, x0)
            target_f = self.f(self.target_net or self.net, x_lo, s_lo)
        pred_f = self.f(self.net, x_hi, s_hi)
        if self.cfg.metric == "l2":
            dist = per_sample_mse(pred_f, target_f)
        else:
            dist = ((pred_f - target_f).pow(2).reshape(b, -1).sum(1) + self.huber_c**2).sqrt() - self.huber_c
        if self.mode == "ct":
            dist = dist / (s_hi - s_lo)
        return weighted_total({"pred": dist}, weight, self.cfg.loss)

    @torch.no_grad()
    def after_step(self) -> None:
        self.step += 1
        pairs = [(self.ema_net, self.cfg.ema_decay)]
        if self.target_net is not None:
            pairs.append((self.target_net, self.cfg.target_decay))
        for net, mu in pairs:
            for p_t, p in zip(net.parameters(), self.net.parameters()):
                p_t.mul_(mu).add_(p.detach(), alpha=1 - mu)
