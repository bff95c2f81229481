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

from dnk_planner.core.arm_geometry import arm_sweep, compile_kernels
from dnk_planner.core.config import GeometricScoreConfig
from dnk_planner.core.geometry import compiled
from dnk_planner.core.kinematics import JOINT_LOWER, JOINT_UPPER, JOINT_VELOCITY_LIMITS
from dnk_planner.core.manifest import ModelManifest
from dnk_planner.core.onnx_runtime import OnnxModel
from dnk_planner.core.normalizer import Normalizer

if TYPE_CHECKING:
    from dnk_planner.core.planner import Context


_LIMIT_TOLERANCE = 1e-5  # rad: float32 round-off on joint values of a few rad


class Selector(Protocol):
    """`bind` and `score`; a selector may also define `project(candidates)`, which the Planner
    calls before `score`: an in-place projection onto the set the selector accepts, so the
    decision's trajectory is the one that was scored; and `refine(trajectory, ctx)`, which the
    Planner calls on the chosen candidate only: a (better trajectory, its score) or None."""

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
    one compiled pass (`arm_geometry.arm_sweep`: FK, the collision spheres of every moving link
    against every obstacle, and the end effector), and scored by a second (`_geometric_scores`).
    A candidate is rejected (-inf) when any planned row (1..H-1; row 0 is the measured state) brings any link sphere inside the safety margin of an obstacle, leaves the
    joint position limits, or needs more than the joint velocity limits between rows (row 0 to 1
    included). The reward sums each planned row's saturating whole-arm clearance; effort and
    progress are those of the end-effector path. The goal comes from the context key `goal` (m).
    `timing` holds that pass's share of the last call (arm_ms).
    """

    def __init__(self, config: GeometricScoreConfig | None = None) -> None:
        self.config = config or GeometricScoreConfig()
        self._q = slice(0, 7)  # bind() resolves it from the manifest
        self.timing: dict[str, float] = {}

    def bind(self, manifest: ModelManifest) -> None:
        self._q = _require_column(manifest, "q", 7, "GeometricSelector (whole-arm clearance needs joint plans)")
        from dnk_planner.core.planner import Context  # (planner imports this module)

        compile_kernels()  # at start-up, not in the first control cycle: so are the score and projection
        probe = np.zeros((1, 2, manifest.dim), dtype=np.float32)  # kernels, by one call each
        self.project(probe)
        self.score(probe, Context({"goal": np.zeros(3)}))

    def project(self, candidates: np.ndarray) -> None:
        """Put planned joint positions (rows 1..H-1) at most `limit_projection_rad` beyond a position
        limit onto it, in place: a goal configuration on a limit stays reachable. Clipping never
        lengthens a step, so the velocity check still holds; collisions are checked on the projected
        rows. Farther excursions stay and are rejected."""
        tol = self.config.limit_projection_rad
        if tol > 0.0:  # one compiled pass: two np.where over the strided view cost 0.2 ms a decision
            q = candidates[:, :, self._q]
            _project_limits(q, JOINT_LOWER.astype(q.dtype), JOINT_UPPER.astype(q.dtype), q.dtype.type(tol))

    def refine(self, trajectory: np.ndarray, ctx: Context) -> tuple[np.ndarray, float] | None:
        """The chosen plan bent onto the goal configuration (context `goal_q`) when it ends within
        `goal_snap_rad` of it: row t moves by t/(H-1) of the end's offset, so row 0 (the measured
        state) stays and the last row is the goal configuration. Returned with its score when the
        bent plan passes every check (clearance, limits, velocities), else None. Only the chosen
        plan is bent: bending all candidates before the argmax made the near-goal choice worse."""
        snap, goal_q = self.config.goal_snap_rad, ctx.values.get("goal_q")
        if snap <= 0.0 or goal_q is None:
            return None
        q = trajectory[:, self._q]
        offset = np.asarray(goal_q, dtype=np.float64) - q[-1]
        if not np.linalg.norm(offset) <= snap:
            return None
        bent = trajectory.copy()
        bent[:, self._q] += (np.linspace(0.0, 1.0, len(q))[:, None] * offset).astype(bent.dtype)
        score = float(self._score(bent[None], ctx, np.empty(1, dtype=np.uint8), timed=False)[0])
        return (bent, score) if score > -np.inf else None

    def score(self, candidates: np.ndarray, ctx: Context) -> np.ndarray:
        return self._score(candidates, ctx, np.empty(len(candidates), dtype=np.uint8))

    def rejections(self, candidates: np.ndarray, ctx: Context) -> dict[str, np.ndarray]:
        """Which of `score`'s checks each candidate fails, (N,) bool per reason, as the score kernel
        found them: for screening a model (which limit its plans break), not on the control path."""
        why = np.empty(len(candidates), dtype=np.uint8)
        self._score(candidates, ctx, why)
        return {name: (why & bit) != 0 for name, bit in REJECTION_BITS.items()}

    def _score(self, candidates: np.ndarray, ctx: Context, why: np.ndarray, timed: bool = True) -> np.ndarray:
        cfg = self.config
        goal = ctx.values.get("goal")
        if goal is None:
            raise ValueError("GeometricSelector needs context key 'goal' (3,) m. Fix: pass it in Context.values.")
        t0 = time.perf_counter()
        q = candidates[..., self._q]                                              # (N, H, 7)
        cutoff = cfg.safety_margin_m + cfg.clearance_saturation_m                  # clearance beyond it is not scored
        clearance, ee = arm_sweep(q, ctx.obstacles, cutoff)                       # (N, H), (3, N, H)
        clearance -= cfg.safety_margin_m
        t1 = time.perf_counter()
        s = np.empty(len(q))
        _geometric_scores(q, clearance, ee, np.asarray(goal, dtype=np.float64), _LOWER, _UPPER, _VMAX_STEP * cfg.dt,
                          cfg.dt, cfg.clearance_saturation_m, cfg.w_clearance, cfg.w_effort, cfg.w_progress, s, why)
        if timed:  # the batch's split, not a refinement's
            self.timing = {"arm_ms": (t1 - t0) * 1e3}
        return s


# Limits with a tolerance of float32 round-off on joint values of a few rad.
_LOWER = JOINT_LOWER - _LIMIT_TOLERANCE
_UPPER = JOINT_UPPER + _LIMIT_TOLERANCE
_VMAX_STEP = JOINT_VELOCITY_LIMITS * (1.0 + 1e-4)
# The checks that reject a candidate, as bits of `_geometric_scores`' why (a candidate may fail several).
_COLLISION, _POSITION_LIMIT, _VELOCITY_LIMIT = 1, 2, 4
REJECTION_BITS = {"collision": _COLLISION, "position_limit": _POSITION_LIMIT, "velocity_limit": _VELOCITY_LIMIT}


@compiled
def _project_limits(q, lower, upper, tol):  # noqa: ANN001
    """GeometricSelector.project's clip, in place on q (N, H, 7): rows 1..H-1 within tol beyond a limit
    are put on it."""
    for i in range(q.shape[0]):
        for t in range(1, q.shape[1]):
            for j in range(7):
                v = q[i, t, j]
                if v > upper[j] and v <= upper[j] + tol:
                    q[i, t, j] = upper[j]
                elif v < lower[j] and v >= lower[j] - tol:
                    q[i, t, j] = lower[j]


@compiled
def _geometric_scores(q, clear, ee, goal, lower, upper, max_step, dt, saturation, w_clearance, w_effort,  # noqa: ANN001
                      w_progress, out, why):
    """out (N,) = the GeometricSelector score of each candidate, -inf when rejected, from its joint rows
    q (N, H, 7), whole-arm clearance beyond the margin clear (N, H) and end-effector path ee (3, N, H);
    why (N,) = the REJECTION_BITS of the checks it fails (0: accepted).

    One pass per candidate in float64 accumulators: a non-finite joint value fails every limit
    comparison, so a NaN plan is rejected, never scored.
    """
    n, h = q.shape[0], q.shape[1]
    nv, na = max(h - 1, 1), max(h - 2, 1)
    for i in range(n):
        clear_ok = position_ok = velocity_ok = True
        reward = 0.0
        for t in range(1, h):
            c = clear[i, t]
            clear_ok &= c >= 0.0
            reward += c if c < saturation else saturation
            for j in range(7):
                v = q[i, t, j]
                position_ok &= (v >= lower[j]) & (v <= upper[j])
                velocity_ok &= abs(v - q[i, t - 1, j]) <= max_step[j]
        why[i] = ((0 if clear_ok else _COLLISION) | (0 if position_ok else _POSITION_LIMIT)
                  | (0 if velocity_ok else _VELOCITY_LIMIT))
        if why[i] != 0:
            out[i] = -np.inf
            continue
        ev, ea, pvx, pvy, pvz = 0.0, 0.0, 0.0, 0.0, 0.0
        for t in range(1, h):
            vx, vy, vz = ee[0, i, t] - ee[0, i, t - 1], ee[1, i, t] - ee[1, i, t - 1], ee[2, i, t] - ee[2, i, t - 1]
            ev += vx * vx + vy * vy + vz * vz
            if t >= 2:
                ax, ay, az = vx - pvx, vy - pvy, vz - pvz
                ea += ax * ax + ay * ay + az * az
            pvx, pvy, pvz = vx, vy, vz
        effort = ev / (dt * dt * nv) + ea / (dt ** 4 * na)       # mean |v|^2 + mean |a|^2, finite differences
        d0 = d1 = 0.0
        for k in range(3):
            d0 += (ee[k, i, 0] - goal[k]) ** 2
            d1 += (ee[k, i, h - 1] - goal[k]) ** 2
        out[i] = w_clearance * reward - w_effort * effort + w_progress * (np.sqrt(d0) - np.sqrt(d1))


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
