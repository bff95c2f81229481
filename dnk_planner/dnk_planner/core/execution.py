"""How a decision's joint plan is executed between decisions: one planner core rule for every front end.

The arm's models see joint positions only, not velocities. Re-planned every period from the
measured state, a plan always starts the way the demonstrations start from that state: near a goal,
from rest, with an ease-in whose first row moves about a millimetre or less, so the arm crept and
stopped 2-10 cm short (reports/arm_distill_rel). Following each plan for `replan_every` periods (an
action chunk, as Diffusion Policy executes) lets the arm take the plan's own velocity profile; 1 is
the paper's receding horizon (first action only). The node and the offline screens both use this,
so a screen measures what the node does.
"""
from __future__ import annotations

import numpy as np

from dnk_planner.core.kinematics import wrap_to_pi


def plan_point(plan: np.ndarray, row: float) -> np.ndarray:
    """The plan (H, 7) at fractional row `row` (linear between rows; row 1.0 is row 1 exactly)."""
    i = min(int(row), len(plan) - 2)
    frac = min(row - i, 1.0)
    return plan[i] if frac == 0.0 else plan[i] + frac * (plan[i + 1] - plan[i])


class PlanFollower:
    """The committed plan and how many control periods along it the last command was.

    `due(q)` says when to decide again: no plan, `replan_every` periods followed, the plan's end
    reached, or the measured joints `q` more than `tolerance_rad` from the last command (an arm that
    does not follow, e.g. blocked or on a stopped controller, is never commanded further ahead of
    itself). Whoever changes what the plan was checked against (goal, obstacles) calls `drop()`.
    """

    def __init__(self, replan_every: int, period_s: float, row_period_s: float, tolerance_rad: float) -> None:
        if replan_every < 1:
            raise ValueError(f"replan_every={replan_every}: must be >= 1 control period. Fix: 1 replans every period.")
        self.replan_every = replan_every
        self.tolerance_rad = tolerance_rad
        self.period_s = period_s
        self.row_period_s = row_period_s
        self.plan: np.ndarray | None = None  # (H, 7) joint plan of the last decision
        self._followed = 0                   # periods commanded from it

    def commit(self, plan: np.ndarray) -> np.ndarray:
        """A new decision's plan; returns its first command (one control period along it)."""
        self.plan = np.asarray(plan, dtype=np.float64)
        self._followed = 0
        return self.advance()

    def _row(self, periods: int) -> float:
        """Row of the plan `periods` control periods after its decision (counted, not summed: no drift)."""
        return periods * self.period_s / self.row_period_s

    def has_next(self) -> bool:
        return self.plan is not None and self._row(self._followed + 1) <= len(self.plan) - 1 + 1e-9

    def due(self, q: np.ndarray) -> bool:
        if not self.has_next() or self._followed >= self.replan_every:
            return True
        lag = wrap_to_pi(np.asarray(q, dtype=np.float64) - plan_point(self.plan, self._row(self._followed)))
        return float(np.max(np.abs(lag))) > self.tolerance_rad

    def advance(self) -> np.ndarray:
        """One more control period along the plan: the next command."""
        if not self.has_next():
            raise RuntimeError("no plan row left to follow. Fix: check has_next() or decide again.")
        self._followed += 1
        return plan_point(self.plan, self._row(self._followed))

    def remaining(self) -> np.ndarray:
        """The plan's rows from the last command on (what following it further would command)."""
        return self.plan[int(self._row(self._followed) + 1e-9):]

    def drop(self) -> None:
        self.plan = None
