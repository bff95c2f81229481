"""Candidate selectors: (N, H, D) raw candidates (+ context) -> (N,) scores, higher is better.

-inf marks a rejected candidate. Every selector is one vectorized pass over the
whole batch (no Python loop over candidates) because it runs inside the control
cycle. `bind(manifest)` is called once by the Planner to resolve column slices
and refuse incompatible student/selector pairs at start-up, not mid-run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np

from dnk_planner.core.config import GeometricScoreConfig
from dnk_planner.core.manifest import ModelManifest
from dnk_planner.core.onnx_runtime import OnnxModel
from dnk_planner.core.normalizer import Normalizer

if TYPE_CHECKING:
    from dnk_planner.core.planner import Context


class Selector(Protocol):
    def bind(self, manifest: ModelManifest) -> None: ...

    def score(self, candidates: np.ndarray, ctx: Context) -> np.ndarray: ...


def _require_column(manifest: ModelManifest, name: str, dim: int, who: str) -> slice:
    slices = manifest.column_slices
    if name not in slices or slices[name].stop - slices[name].start != dim:
        raise ValueError(
            f"{who} needs a column {name!r} of dim {dim}, but student {manifest.model_id!r} has columns "
            f"{[(c.name, c.dim) for c in manifest.columns]}. Fix: pair the selector with a matching student."
        )
    return slices[name]


class GeometricSelector:
    """Arm scoring: clearance reward - effort penalty + goal progress; margin violations -> -inf.

    Uses the `ee_position` column; the goal comes from the context key `goal`. Row 0
    is the measured current position, so only rows 1..H-1 (the planned points) are
    checked against the margin: otherwise an arm already inside the margin could
    never be planned out of it.
    """

    def __init__(self, config: GeometricScoreConfig | None = None) -> None:
        self.config = config or GeometricScoreConfig()
        self._ee = slice(0, 3)  # documented arm layout; bind() resolves it from the manifest

    def bind(self, manifest: ModelManifest) -> None:
        self._ee = _require_column(manifest, "ee_position", 3, "GeometricSelector")

    def score(self, candidates: np.ndarray, ctx: Context) -> np.ndarray:
        cfg = self.config
        goal = ctx.values.get("goal")
        if goal is None:
            raise ValueError("GeometricSelector needs context key 'goal' (3,) m. Fix: pass it in Context.values.")
        # One copy into (x, y, z) planes of shape (N, H): every term below is elementwise on planes.
        p = np.ascontiguousarray(np.moveaxis(candidates[..., self._ee], -1, 0))       # (3, N, H)
        if ctx.obstacles is None or ctx.obstacles.is_empty:
            clearance = np.full(p.shape[1:], cfg.clearance_saturation_m, dtype=p.dtype)
        else:
            clearance = ctx.obstacles.min_signed_distance_planes(p)
            clearance -= cfg.safety_margin_m
        clearance = clearance[:, 1:]  # planned points only
        rejected = (clearance < 0.0).any(axis=1)
        reward = np.minimum(clearance, cfg.clearance_saturation_m).sum(axis=1)

        # mean |v|^2 + mean |a|^2 with v, a by finite differences (dt folded into the constants)
        v = p[:, :, 1:] - p[:, :, :-1]
        a = v[:, :, 1:] - v[:, :, :-1]
        effort = np.square(v).sum(axis=(0, 2)) / (cfg.dt**2 * max(v.shape[2], 1))
        effort += np.square(a).sum(axis=(0, 2)) / (cfg.dt**4 * max(a.shape[2], 1))

        g = np.asarray(goal, dtype=p.dtype)[:, None]
        progress = np.sqrt(np.square(p[:, :, 0] - g).sum(axis=0)) - np.sqrt(np.square(p[:, :, -1] - g).sum(axis=0))

        s = cfg.w_clearance * reward - cfg.w_effort * effort + cfg.w_progress * progress
        s = s.astype(np.float64)
        s[rejected] = -np.inf
        return s


class CriticSelector:
    """IQL critic: score = Q(obs at row 0, action at the action row), raw env units."""

    def __init__(self, critic: OnnxModel) -> None:
        if critic.manifest.role != "critic":
            raise ValueError(f"CriticSelector got a {critic.manifest.role!r} model. Fix: pass a role='critic' model.")
        self.critic = critic
        shapes = {t.name: t.shape for t in critic.manifest.inputs}
        self._obs_dim, self._act_dim = int(shapes["obs"][1]), int(shapes["act"][1])
        self._obs: slice | None = None
        self._act: slice | None = None
        self._act_row = 0

    def bind(self, manifest: ModelManifest) -> None:
        self._obs = _require_column(manifest, "obs", self._obs_dim, "CriticSelector")
        self._act = _require_column(manifest, manifest.action.column, self._act_dim, "CriticSelector")
        self._act_row = manifest.action.row

    def score(self, candidates: np.ndarray, ctx: Context) -> np.ndarray:
        if self._obs is None:
            raise ValueError("CriticSelector is not bound. Fix: construct it through Planner (which calls bind).")
        q = self.critic.run(obs=candidates[:, 0, self._obs], act=candidates[:, self._act_row, self._act])["q"]
        return q.astype(np.float64)


class ClassifierSelector:
    """Return classifier at diffusion step 0: score = value(normalized trajectory)."""

    def __init__(self, classifier: OnnxModel) -> None:
        if classifier.manifest.role != "classifier":
            raise ValueError(
                f"ClassifierSelector got a {classifier.manifest.role!r} model. Fix: pass a role='classifier' model."
            )
        self.classifier = classifier
        self.normalizer = Normalizer.from_manifest(classifier.manifest)
        self._buf: np.ndarray | None = None

    def bind(self, manifest: ModelManifest) -> None:
        cm = self.classifier.manifest
        if cm.horizon != manifest.horizon or cm.columns != manifest.columns:
            raise ValueError(
                f"classifier {cm.model_id!r} (H={cm.horizon}, columns {[c.name for c in cm.columns]}) does not "
                f"match student {manifest.model_id!r} (H={manifest.horizon}, columns "
                f"{[c.name for c in manifest.columns]}). Fix: use a classifier trained on the same layout."
            )

    def score(self, candidates: np.ndarray, ctx: Context) -> np.ndarray:
        if self._buf is None or self._buf.shape != candidates.shape:
            self._buf = np.empty(candidates.shape, dtype=np.float32)
        x_n = self.normalizer.normalize(candidates, out=self._buf)
        return self.classifier.run(trajectory=x_n)["value"].astype(np.float64)
