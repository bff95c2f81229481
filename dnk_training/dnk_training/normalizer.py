"""The runtime's normalizer (`dnk_planner.core.normalizer`) with torch-tensor support.

Statistics, validation and the manifest form are defined once, in the planner core; training
only adds the tensor path, because the teacher and students normalize batches on the device.
"""
from __future__ import annotations

import numpy as np
import torch

from dnk_planner.core.normalizer import Normalizer as CoreNormalizer


class Normalizer(CoreNormalizer):
    """`CoreNormalizer` that also maps torch tensors (same dtype and device as the input)."""

    def _torch_stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self._stats(x)  # column check
        return (torch.as_tensor(self.mean, dtype=x.dtype, device=x.device),
                torch.as_tensor(self.std, dtype=x.dtype, device=x.device))

    def normalize(self, x: np.ndarray | torch.Tensor, out: np.ndarray | None = None) -> np.ndarray | torch.Tensor:
        if isinstance(x, torch.Tensor):
            mean, std = self._torch_stats(x)
            return (x - mean) / std
        return super().normalize(x, out)

    def denormalize(self, x_n: np.ndarray | torch.Tensor, out: np.ndarray | None = None) -> np.ndarray | torch.Tensor:
        if isinstance(x_n, torch.Tensor):
            mean, std = self._torch_stats(x_n)
            return x_n * std + mean
        return super().denormalize(x_n, out)
