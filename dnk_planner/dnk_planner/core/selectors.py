"""Candidate selectors: (N, H, D) raw candidates (+ context) -> (N,) scores, higher is better.

-inf marks a rejected candidate. Every selector is one vectorized pass over the
whole batch (no Python loop over candidates) because it runs inside the control
cycle. `bind(manifest)` is called once by the Planner to resolve column slices
and refuse incompatible student/selector pairs at start-up, not mid-run.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Protocol

import numpy as np

from dnk_planner.core.arm_geometry import arm_planes, sphere_clearance
from dnk_planner.core.config import GeometricScoreConfig
from dnk_planner.core.kinematics import JOINT_LOWER, JOINT_UPPER, JOINT_VELOCITY_LIMITS
from dnk_planner.core.manifest import ModelManifest
from dnk_planner.core.onnx_runtime import OnnxModel
from dnk_planner.core.normalizer import Normalizer

if TYPE_CHECKING:
    from dnk_planner.core.planner import Context


_LIMIT_TOLERANCE = 1e-5  # rad: float32 round-off on joint values of a few rad


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
    """Arm scoring on joint-space plans: whole-arm clearance reward - effort penalty + goal progress.

    Each candidate row carries the joint positions (`q` column, rad). Every row is placed by
    batched FK (`arm_geometry.arm_planes`): the collision spheres of every moving link and the
    end effector. A candidate is rejected (-inf) when any planned row (1..H-1; row 0 is the
    measured state) brings any link sphere inside the safety margin of an obstacle, leaves the
    joint position limits, or needs more than the joint velocity limits between rows (row 0 to 1
    included). The reward sums each planned row's saturating whole-arm clearance; effort and
    progress are those of the end-effector path. The goal comes from the context key `goal` (m).
    `timing` holds the FK and clearance share of the last call (ms).
    """

    def __init__(self, config: GeometricScoreConfig | None = None) -> None:
        self.config = config or GeometricScoreConfig()
        self._q = slice(0, 7)  # bind() resolves it from the manifest
        self.timing: dict[str, float] = {}

    def bind(self, manifest: ModelManifest) -> None:
        self._q = _require_column(manifest, "q", 7, "GeometricSelector (whole-arm clearance needs joint plans)")

    def score(self, candidates: np.ndarray, ctx: Context) -> np.ndarray:
        cfg = self.config
        goal = ctx.values.get("goal")
        if goal is None:
            raise ValueError("GeometricSelector needs context key 'goal' (3,) m. Fix: pass it in Context.values.")
        t0 = time.perf_counter()
        q = candidates[..., self._q]                                              # (N, H, 7)
        n, h = q.shape[:2]
        centers, ee = arm_planes(np.swapaxes(q, 0, 1))                            # (3, S, H*N), (3, H*N)
        t1 = time.perf_counter()
        if ctx.obstacles is None or ctx.obstacles.is_empty:
            clearance = np.full((n, h), cfg.clearance_saturation_m, dtype=q.dtype)
        else:
            cutoff = cfg.safety_margin_m + cfg.clearance_saturation_m              # clearance beyond it is not scored
            clearance = sphere_clearance(centers, ctx.obstacles, cutoff).reshape(h, n).T - cfg.safety_margin_m
        t2 = time.perf_counter()
        clearance = clearance[:, 1:]
        dq = np.abs(np.diff(q, axis=1)) / cfg.dt
        rejected = ((clearance < 0.0).any(axis=1)
                    | (q[:, 1:] < self._lower(q.dtype)).any(axis=(1, 2)) | (q[:, 1:] > self._upper(q.dtype)).any(axis=(1, 2))
                    | (dq > self._vmax(q.dtype)).any(axis=(1, 2)))
        reward = np.minimum(clearance, cfg.clearance_saturation_m).sum(axis=1)

        p = ee.reshape(3, h, n).transpose(0, 2, 1)                                # (3, N, H)
        # mean |v|^2 + mean |a|^2 of the end effector, v, a by finite differences (dt folded in)
        v = p[:, :, 1:] - p[:, :, :-1]
        a = v[:, :, 1:] - v[:, :, :-1]
        effort = np.square(v).sum(axis=(0, 2)) / (cfg.dt**2 * max(v.shape[2], 1))
        effort += np.square(a).sum(axis=(0, 2)) / (cfg.dt**4 * max(a.shape[2], 1))

        g = np.asarray(goal, dtype=p.dtype)[:, None]
        progress = np.sqrt(np.square(p[:, :, 0] - g).sum(axis=0)) - np.sqrt(np.square(p[:, :, -1] - g).sum(axis=0))

        s = cfg.w_clearance * reward - cfg.w_effort * effort + cfg.w_progress * progress
        s = s.astype(np.float64)
        s[rejected] = -np.inf
        self.timing = {"fk_ms": (t1 - t0) * 1e3, "clearance_ms": (t2 - t1) * 1e3}
        return s

    # Limits in the candidates' dtype, with a tolerance of float32 round-off on values ~3 rad.
    @staticmethod
    def _lower(dtype: np.dtype) -> np.ndarray:
        return (JOINT_LOWER - _LIMIT_TOLERANCE).astype(dtype)

    @staticmethod
    def _upper(dtype: np.dtype) -> np.ndarray:
        return (JOINT_UPPER + _LIMIT_TOLERANCE).astype(dtype)

    @staticmethod
    def _vmax(dtype: np.dtype) -> np.ndarray:
        return (JOINT_VELOCITY_LIMITS * (1.0 + 1e-4)).astype(dtype)


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
