"""Per-column Gaussian normalizer for trajectory rows.

The student, classifier and teacher all work in normalized space x_n = (x - mean) / std; the
same mean/std go into every exported manifest (``normalizer: {mean, std}``), so they are stored
as plain JSON beside each model rather than inside a pickle.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

MIN_STD = 1e-6


class Normalizer:
    """Column-wise ``(x - mean) / std`` with a std floor so constant columns do not blow up."""

    def __init__(self, mean: np.ndarray | list[float], std: np.ndarray | list[float]) -> None:
        self.mean = np.asarray(mean, dtype=np.float32).reshape(-1)
        self.std = np.asarray(std, dtype=np.float32).reshape(-1)
        if self.mean.shape != self.std.shape:
            raise ValueError(
                f"normalizer mean has {self.mean.size} entries but std has {self.std.size}; "
                "both must have one entry per trajectory column (D)"
            )
        if not (np.all(np.isfinite(self.mean)) and np.all(np.isfinite(self.std))):
            raise ValueError("normalizer mean/std contain NaN or inf; recompute them from clean data")
        if np.any(self.std <= 0):
            raise ValueError("normalizer std must be > 0 in every column; recompute with Normalizer.fit")

    @property
    def dim(self) -> int:
        return int(self.mean.size)

    @classmethod
    def fit(cls, data: np.ndarray) -> "Normalizer":
        """Fit on rows ``data`` of shape (N, D); the std is floored at MIN_STD."""
        data = np.asarray(data, dtype=np.float64).reshape(-1, data.shape[-1])
        return cls(data.mean(axis=0), np.maximum(data.std(axis=0), MIN_STD))

    def _check(self, x_dim: int) -> None:
        if x_dim != self.dim:
            raise ValueError(f"input has {x_dim} columns but the normalizer was fit on {self.dim}")

    def normalize(self, x: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        self._check(x.shape[-1])
        if isinstance(x, torch.Tensor):
            return (x - torch.as_tensor(self.mean, dtype=x.dtype, device=x.device)) / torch.as_tensor(
                self.std, dtype=x.dtype, device=x.device
            )
        return ((x - self.mean) / self.std).astype(np.float32)

    def unnormalize(self, x: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        self._check(x.shape[-1])
        if isinstance(x, torch.Tensor):
            return x * torch.as_tensor(self.std, dtype=x.dtype, device=x.device) + torch.as_tensor(
                self.mean, dtype=x.dtype, device=x.device
            )
        return (x * self.std + self.mean).astype(np.float32)

    def slice(self, start: int, stop: int) -> "Normalizer":
        """Normalizer of a column range (e.g. only ``obs``) to normalize a context vector."""
        return Normalizer(self.mean[start:stop], self.std[start:stop])

    def to_dict(self) -> dict[str, list[float]]:
        """Manifest form: ``{"mean": [D floats], "std": [D floats]}``."""
        return {"mean": [float(v) for v in self.mean], "std": [float(v) for v in self.std]}

    @classmethod
    def from_dict(cls, d: dict) -> "Normalizer":
        missing = {"mean", "std"} - set(d)
        if missing:
            raise ValueError(f"normalizer dict lacks {sorted(missing)}; expected keys 'mean' and 'std'")
        return cls(d["mean"], d["std"])

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> "Normalizer":
        return cls.from_dict(json.loads(Path(path).read_text()))
