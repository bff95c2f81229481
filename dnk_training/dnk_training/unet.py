"""Janner-style temporal 1-D U-Net over trajectories (B, H, D) and its half (encoder) variant.

Convolutions run along the horizon with the D row entries as channels. Downsampling halves
the horizon only while it stays >= 2 and even, so H=4 with three levels gives 4 -> 2 -> 2
instead of collapsing to length 1 (where a kernel-5 convolution would see only padding).
"""
from __future__ import annotations

import math

import torch
from torch import nn


def sinusoidal_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0, endpoint: bool = True) -> torch.Tensor:
    """[sin, cos] features of a (float) step t [B] -> [B, dim], the one step embedding of every network.

    Frequencies run geometrically from 1 to 1/max_period over dim // 2 channels; `endpoint`
    includes 1/max_period itself (the U-Net's choice) or stops one step short (the consistency
    students', which embed 1000 * step fraction with max_period 1000).
    """
    half = dim // 2
    denom = max(half - 1, 1) if endpoint else half
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / denom)
    args = t.float()[:, None] * freqs[None, :]
    return torch.cat([args.sin(), args.cos()], dim=-1)


class SinusoidalEmbedding(nn.Module):
    """Diffusion-step embedding (float t, so fractional steps also work)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return sinusoidal_embedding(t, self.dim)


def _groups(channels: int) -> int:
    for g in (8, 4, 2, 1):
        if channels % g == 0:
            return g
    return 1


class ConvBlock(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int) -> None:
        super().__init__(nn.Conv1d(c_in, c_out, kernel, padding=kernel // 2), nn.GroupNorm(_groups(c_out), c_out), nn.Mish())


class ResidualTemporalBlock(nn.Module):
    """Two conv blocks with the step embedding added in between, plus a 1x1 residual."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int, kernel: int) -> None:
        super().__init__()
        self.block0 = ConvBlock(c_in, c_out, kernel)
        self.block1 = ConvBlock(c_out, c_out, kernel)
        self.emb = nn.Sequential(nn.Mish(), nn.Linear(emb_dim, c_out))
        self.residual = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.block0(x) + self.emb(emb)[:, :, None]
        return self.block1(h) + self.residual(x)


def _level_lengths(horizon: int, levels: int) -> list[bool]:
    """Per level (except the last): whether it downsamples; halves while length >= 4 and even."""
    downs, length = [], horizon
    for _ in range(levels - 1):
        d = length >= 4 and length % 2 == 0
        downs.append(d)
        length = length // 2 if d else length
    return downs


def _step_embedding(dim: int) -> nn.Sequential:
    return nn.Sequential(SinusoidalEmbedding(dim), nn.Linear(dim, dim * 4), nn.Mish(), nn.Linear(dim * 4, dim))


class TemporalUNet(nn.Module):
    """Denoiser f(x_t, t) -> x0 estimate, both (B, H, D)."""

    def __init__(self, horizon: int, dim: int, model_dim: int = 32, dim_mult: list[int] | tuple[int, ...] = (1, 4, 2), kernel_size: int = 5) -> None:
        super().__init__()
        chans = [dim] + [model_dim * m for m in dim_mult]
        emb_dim = model_dim
        self.step_emb = _step_embedding(emb_dim)
        downs = _level_lengths(horizon, len(dim_mult))
        self.down = nn.ModuleList()
        for i, (c_in, c_out) in enumerate(zip(chans[:-1], chans[1:])):
            is_down = i < len(downs) and downs[i]
            self.down.append(nn.ModuleList([
                ResidualTemporalBlock(c_in, c_out, emb_dim, kernel_size),
                ResidualTemporalBlock(c_out, c_out, emb_dim, kernel_size),
                nn.Conv1d(c_out, c_out, 3, stride=2, padding=1) if is_down else nn.Identity(),
            ]))
        mid = chans[-1]
        self.mid1 = ResidualTemporalBlock(mid, mid, emb_dim, kernel_size)
        self.mid2 = ResidualTemporalBlock(mid, mid, emb_dim, kernel_size)
        self.up = nn.ModuleList()
        pairs = list(zip(chans[1:-1], chans[2:]))  # (c_out of level i, c_out of level i+1)
        for i, (c_small, c_big) in reversed(list(enumerate(pairs))):
            is_up = downs[i]
            self.up.append(nn.ModuleList([
                ResidualTemporalBlock(c_big * 2, c_small, emb_dim, kernel_size),
                ResidualTemporalBlock(c_small, c_small, emb_dim, kernel_size),
                nn.ConvTranspose1d(c_small, c_small, 4, stride=2, padding=1) if is_up else nn.Identity(),
            ]))
        self.final = nn.Sequential(ConvBlock(chans[1], chans[1], kernel_size), nn.Conv1d(chans[1], dim, 1))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        h = x.transpose(1, 2)
        emb = self.step_emb(t)
        skips = []
        for res0, res1, down in self.down:
            h = res1(res0(h, emb), emb)
            skips.append(h)
            h = down(h)
        h = self.mid2(self.mid1(h, emb), emb)
        for res0, res1, up in self.up:
            h = torch.cat([h, skips.pop()], dim=1)
            h = res1(res0(h, emb), emb)
            h = up(h)
        return self.final(h).transpose(1, 2)


class TemporalEncoder(nn.Module):
    """Half U-Net (down path + mid) pooled to one scalar per trajectory: g(x_t, t) -> (B,)."""

    def __init__(self, horizon: int, dim: int, model_dim: int = 32, dim_mult: list[int] | tuple[int, ...] = (1, 4, 2), kernel_size: int = 5) -> None:
        super().__init__()
        chans = [dim] + [model_dim * m for m in dim_mult]
        emb_dim = model_dim
        self.step_emb = _step_embedding(emb_dim)
        downs = _level_lengths(horizon, len(dim_mult))
        self.down = nn.ModuleList()
        length = horizon
        for i, (c_in, c_out) in enumerate(zip(chans[:-1], chans[1:])):
            is_down = i < len(downs) and downs[i]
            self.down.append(nn.ModuleList([
                ResidualTemporalBlock(c_in, c_out, emb_dim, kernel_size),
                ResidualTemporalBlock(c_out, c_out, emb_dim, kernel_size),
                nn.Conv1d(c_out, c_out, 3, stride=2, padding=1) if is_down else nn.Identity(),
            ]))
            length = length // 2 if is_down else length
        mid = chans[-1]
        self.mid1 = ResidualTemporalBlock(mid, mid // 2, emb_dim, kernel_size)
        self.mid2 = ResidualTemporalBlock(mid // 2, mid // 4, emb_dim, kernel_size)
        flat = (mid // 4) * length
        self.head = nn.Sequential(nn.Linear(flat + emb_dim, flat // 2), nn.Mish(), nn.Linear(flat // 2, 1))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        h = x.transpose(1, 2)
        emb = self.step_emb(t)
        for res0, res1, down in self.down:
            h = down(res1(res0(h, emb), emb))
        h = self.mid2(self.mid1(h, emb), emb)
        return self.head(torch.cat([h.flatten(1), emb], dim=1)).squeeze(-1)
