"""Return classifier: half U-Net on noisy windows predicting the window-start return-to-go.

``ReturnClassifier(x, t) -> value`` with x (B, H, D) normalized (at diffusion step t; t = 0 for
clean candidates) and value (B,) in return units (discounted RTG, terminal penalty included).
The net regresses a standardized target; the output is mapped back to return units so the
guidance weight w_cg keeps its published scale and rankings read as returns.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from .checkpoints import load_checkpoint, read_meta, save_checkpoint
from .configs import TaskConfig
from .diffusion import Conditioning, Schedule
from .normalizer import Normalizer
from .trainer import TrainState, run_training
from .unet import TemporalEncoder


class ReturnClassifier(nn.Module):
    def __init__(self, cfg: TaskConfig, normalizer: Normalizer, value_mean: float = 0.0, value_std: float = 1.0) -> None:
        super().__init__()
        self.cfg = cfg
        self.normalizer = normalizer
        self.horizon = cfg.dataset.horizon
        u = cfg.classifier.unet
        self.net = TemporalEncoder(self.horizon, cfg.layout.dim, u.model_dim, u.dim_mult, u.kernel_size)
        self.register_buffer("value_mean", torch.tensor(float(value_mean)))
        self.register_buffer("value_std", torch.tensor(float(value_std)))
        # same schedule and conditioning as the teacher: trained on the states the sampler visits
        self.schedule = Schedule(cfg.teacher.diffusion.steps, cfg.teacher.diffusion.beta_schedule)
        self.conditioning = Conditioning(cfg.layout, self.horizon)

    def forward(self, x: torch.Tensor, t: torch.Tensor | int = 0) -> torch.Tensor:
        """Predicted return-to-go (B,) of normalized windows x (B, H, D) at diffusion step t."""
        if isinstance(t, int):  # derived from x so an ONNX trace keeps the batch dimension dynamic
            t = torch.zeros_like(x[:, 0, 0], dtype=torch.long) + t
        return self.net(x, t) * self.value_std + self.value_mean

    def loss(self, x0: torch.Tensor, values: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """MSE on the standardized target over uniformly drawn diffusion steps."""
        b = x0.shape[0]
        t = torch.randint(0, self.schedule.steps, (b,), generator=generator)
        noise = torch.randn(x0.shape, generator=generator)
        xt = self.conditioning.reimpose(self.schedule.q_sample(x0, t, noise), x0)
        target = (values - self.value_mean) / self.value_std
        return ((self.net(xt, t) - target) ** 2).mean()

    def meta(self) -> dict:
        return {"kind": "classifier", "task_config": self.cfg.model_dump(), "normalizer": self.normalizer.to_dict()}

    def save(self, prefix: str | Path, step: int) -> Path:
        return save_checkpoint(prefix, {"classifier": self}, dict(self.meta(), step=step))

    @classmethod
    def load(cls, path: str | Path) -> "ReturnClassifier":
        meta = read_meta(path)
        if meta.get("kind") != "classifier":
            raise ValueError(f"{path} is a '{meta.get('kind')}' checkpoint, not a return classifier")
        c = cls(TaskConfig.model_validate(meta["task_config"]), Normalizer.from_dict(meta["normalizer"]))
        load_checkpoint(path, {"classifier": c})
        return c.eval()


def train_classifier(
    cfg: TaskConfig,
    windows_x: np.ndarray,
    values: np.ndarray,
    normalizer: Normalizer,
    run_dir: str | Path,
    resume: bool = False,
    progress: bool = True,
) -> ReturnClassifier:
    tc = cfg.classifier.train
    torch.manual_seed(tc.seed)
    clf = ReturnClassifier(cfg, normalizer, float(values.mean()), float(max(values.std(), 1e-6)))
    data = torch.as_tensor(normalizer.normalize(windows_x))
    vals = torch.as_tensor(values, dtype=torch.float32)
    opt = torch.optim.Adam(clf.net.parameters(), lr=tc.lr)
    gen = torch.Generator().manual_seed(tc.seed)
    state = TrainState({"classifier": clf}, {"adam": opt}, {"train": gen}, clf.meta())

    def step_fn(step: int) -> dict[str, float]:
        idx = torch.randint(0, data.shape[0], (tc.batch_size,), generator=gen)
        loss = clf.loss(data[idx], vals[idx], gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": loss.item()}

    run_training("classifier", state, step_fn, tc, run_dir, resume=resume, progress=progress)
    return clf.eval()
