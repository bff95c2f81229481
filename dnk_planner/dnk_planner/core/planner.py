"""The planner core: priors -> ONE batched student call -> candidates -> scores -> decision.

Every front end (ROS node, MuJoCo bridge, bag replay) calls `Planner.plan`; none
re-implements priors, inference or scoring (docs/interfaces.md, "Planner core").
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dnk_planner.core.config import PlannerConfig
from dnk_planner.core.geometry import ObstacleSet
from dnk_planner.core.manifest import load_model
from dnk_planner.core.onnx_runtime import OnnxModel
from dnk_planner.core.normalizer import Normalizer
from dnk_planner.core.priors import PriorBuilder, check_values, fixed_entries, free_columns, impose_fixed, offsets_of
from dnk_planner.core.selectors import ClassifierSelector, CriticSelector, GeometricSelector, Selector


GENERATOR_ROLES = ("student", "teacher")  # models that map priors to trajectories


@dataclass(frozen=True)
class Context:
    """What the world looks like now: context values keyed as the manifest's `fixed.source`."""

    values: Mapping[str, np.ndarray]
    obstacles: ObstacleSet | None = None


@dataclass(frozen=True)
class Decision:
    """One planning result, all arrays in raw units and owned by the decision (not reused buffers).

    When every candidate is rejected (feasible=False): best_index = -1, action = the hold
    action and trajectory = the hold trajectory (see `Planner.plan`), never a rejected plan.
    """

    action: np.ndarray          # (action dim,)
    trajectory: np.ndarray      # (H, D)
    candidates: np.ndarray      # (N, H, D)
    scores: np.ndarray          # (N,) float64, -inf = rejected
    best_index: int
    feasible: bool
    # prior_ms, inference_ms, scoring_ms, total_ms (+ the selector's split, e.g. arm_ms)
    timing: dict[str, float] = field(default_factory=dict)
    # the prior generator's state this decision's noise was drawn from (priors.generator_words):
    # `plan(ctx, generator_state=...)` with it reproduces the decision bit for bit
    generator_state: tuple[int, ...] = ()


def smoothing_projection(horizon: int, degree: int) -> np.ndarray | None:
    """(H, H) least-squares projection onto t, t^2 .. t^degree (t in [0, 1] over the rows), applied
    to offsets from row 0 so row 0 stays exact; None for degree 0."""
    if degree == 0:
        return None
    t = np.linspace(0.0, 1.0, horizon)[:, None]
    basis = t ** np.arange(1, degree + 1)[None, :]                                    # (H, degree)
    return (basis @ np.linalg.pinv(basis)).astype(np.float32)


class Planner:
    """Holds the student, the selector and all per-decision buffers (allocated once)."""

    def __init__(self, student: OnnxModel, selector: Selector, config: PlannerConfig | None = None) -> None:
        self.config = config or PlannerConfig()
        m = student.manifest
        if m.role not in GENERATOR_ROLES:
            raise ValueError(f"model {m.model_id!r} has role {m.role!r}. Fix: pass the role='student' (or the "
                             f"exported 'teacher') model first.")
        self.student = student
        self.manifest = m
        self.selector = selector
        selector.bind(m)
        n = self.config.num_candidates
        self.priors = PriorBuilder(m, n, self.config.seed, self.config.temperature)
        # Only the planned columns are decoded: those fixed at every row are overwritten by the exact
        # context anyway (the arm's 77 goal and obstacle columns of 84: decoding them was 0.1 ms).
        norm, free = Normalizer.from_manifest(m), free_columns(m)
        self._decode = [(sl, norm.slice(sl.start, sl.stop, m.horizon)) for sl in free]
        self.entries = fixed_entries(m)
        self.offsets = [o for o in offsets_of(m, m.column_slices) if o.cols in free]
        self._out = np.empty((n, m.horizon, m.dim), dtype=np.float32)
        self._raw = np.empty_like(self._out)
        self._act_cols = m.column_slices[m.action.column]
        self._act_row = m.action.row
        self._smooth = smoothing_projection(m.horizon, self.config.smoothing_degree)
        # Hold = keep the current value of the action column if the context provides it
        # (arm: current ee_position), else a zero action (locomotion: no torque).
        self._hold_source = next(
            (f.source for f in m.fixed if f.column == m.action.column), None
        )

    @classmethod
    def from_files(
        cls,
        student_path: str | Path,
        selector: Selector | str | Path | None = None,
        config: PlannerConfig | None = None,
    ) -> Planner:
        """Load the student (and a critic/classifier if `selector` is a model path).

        selector=None picks GeometricSelector for arm students; locomotion needs a
        critic or classifier (object or .onnx/.json path).
        """
        config = config or PlannerConfig()
        student = load_model(student_path, provider=config.provider, threads=config.threads)
        if selector is None:
            if student.manifest.task != "arm":
                raise ValueError(
                    f"student {student.manifest.model_id!r} is a {student.manifest.task!r} model: no default "
                    f"selector. Fix: pass selector=<critic or classifier .onnx> or a selector object."
                )
            selector = GeometricSelector()
        elif isinstance(selector, (str, Path)):
            scorer = load_model(selector, provider=config.provider, threads=config.threads)
            selector = CriticSelector(scorer) if scorer.manifest.role == "critic" else ClassifierSelector(scorer)
        return cls(student, selector, config)

    def prefetch(self) -> None:
        """Draw the next decision's prior noise now (call in the control loop's idle time).

        Moves the largest non-inference cost of `plan` off the critical path; decisions
        are bit-identical with or without it.
        """
        self.priors.prefetch()

    def _validate(self, ctx: Context) -> dict[str, np.ndarray]:
        if not isinstance(ctx, Context):
            raise ValueError(f"plan() needs a Context, got {type(ctx).__name__}. Fix: wrap values in Context(...).")
        if ctx.obstacles is not None and not isinstance(ctx.obstacles, ObstacleSet):
            raise ValueError(
                f"Context.obstacles is a {type(ctx.obstacles).__name__}. Fix: build it with ObstacleSet.from_shapes."
            )
        return check_values(self.manifest, ctx.values, self.entries)

    def plan(self, ctx: Context, generator_state: tuple[int, ...] | None = None) -> Decision:
        """One decision: N priors, one student call, exact fixed entries, scores, argmax, and the
        selector's refinement of the chosen candidate (when it has one).

        `generator_state` (a recorded `Decision.generator_state`) replays that decision's noise;
        by default the noise continues the seeded stream.

        Raises ValueError naming the context key for missing / mis-shaped / non-finite
        inputs. NaN scores count as rejected. Timing: prior_ms covers validation and
        noise; inference_ms the ONNX call(s) plus denormalization and re-imposing fixed
        entries; scoring_ms the selector (its projection and refinement included) and argmax.
        """
        t0 = time.perf_counter()
        values = self._validate(ctx)
        if generator_state is not None:
            self.priors.restore(generator_state)
        prior = self.priors.build(values)
        drawn_from = self.priors.drawn_from
        t1 = time.perf_counter()

        self.generate(prior, out=self._out)
        raw = self._raw
        for sl, norm in self._decode:
            norm.denormalize(self._out[:, :, sl], out=raw[:, :, sl])
        for o in self.offsets:  # relative columns back to raw units: + the context value they were planned from
            raw[:, :, o.cols] += values[o.source]
        impose_fixed(raw, self.entries, values)  # exact raw context, free of normalization round-off
        if self._smooth is not None:
            a = raw[:, :, self._act_cols]
            n, h, c = a.shape  # one (H, H) @ (H, N C) product (einsum's loop took as long as the student)
            offsets = (a - a[:, :1]).transpose(1, 0, 2).reshape(h, n * c)
            raw[:, :, self._act_cols] = a[:, :1] + (self._smooth @ offsets).reshape(h, n, c).transpose(1, 0, 2)
        t2 = time.perf_counter()

        project = getattr(self.selector, "project", None)
        if project is not None:
            project(raw)
        scores = np.asarray(self.selector.score(raw, ctx), dtype=np.float64)
        if scores.shape != (raw.shape[0],):
            raise ValueError(f"selector returned scores of shape {scores.shape}, expected ({raw.shape[0]},)")
        scores = np.where(np.isnan(scores), -np.inf, scores)
        best = int(np.argmax(scores))
        feasible = bool(scores[best] > -np.inf)
        candidates = raw.copy()  # the decision must not change when the buffers are reused
        refine = getattr(self.selector, "refine", None)
        if feasible and refine is not None and (refined := refine(candidates[best], ctx)) is not None:
            candidates[best], scores[best] = refined  # the executed plan is the scored one
        if feasible:
            trajectory = candidates[best].copy()
            action = trajectory[self._act_row, self._act_cols].copy()
        else:
            best = -1
            action, trajectory = self._hold(values, candidates)
        t3 = time.perf_counter()
        timing = {
            "prior_ms": (t1 - t0) * 1e3,
            "inference_ms": (t2 - t1) * 1e3,
            "scoring_ms": (t3 - t2) * 1e3,
            "total_ms": (t3 - t0) * 1e3,
            **getattr(self.selector, "timing", {}),  # the selector's own split of scoring_ms
        }
        return Decision(action, trajectory, candidates, scores, best, feasible, timing, drawn_from)

    def generate(self, prior: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Normalized trajectories (N, H, D) from normalized priors: one student call, or the teacher's
        `denoising_steps` calls (t = K-1 .. 0): the only place the two policies differ."""
        out = np.empty_like(prior) if out is None else out
        steps = self.manifest.denoising_steps
        if steps is None:
            self.student.run_into({"trajectory": out}, prior=prior)
            return out
        x = prior
        for t in reversed(range(steps)):
            x = self.student.run(prior=x, step=np.full(len(prior), t, dtype=np.float32))["trajectory"]
        out[...] = x
        return out

    def _hold(self, values: dict[str, np.ndarray], candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Hold action and a stay-put trajectory: row 0 (context-exact) repeated, action column = hold."""
        if self._hold_source is not None:
            action = values[self._hold_source].copy()
        else:
            action = np.zeros(self._act_cols.stop - self._act_cols.start, dtype=np.float32)
        trajectory = np.repeat(candidates[0, :1], candidates.shape[1], axis=0)
        trajectory[:, self._act_cols] = action
        return action, trajectory
