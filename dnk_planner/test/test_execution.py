"""PlanFollower: when the node decides again, and which rows it commands in between."""
from __future__ import annotations

import numpy as np
import pytest

from dnk_planner.core.execution import PlanFollower, plan_point

H = 32
TOL = 0.02


def ramp(offset: float = 0.0, step: float = 1.0) -> np.ndarray:
    """(H, 7) plan whose row k is offset + k * step in every joint: a command names its row."""
    return np.repeat(offset + step * np.arange(H, dtype=np.float64)[:, None], 7, axis=1)


def test_plan_point_interpolates_rows_and_stops_at_the_last():
    plan = ramp()
    assert np.allclose(plan_point(plan, 1.0), 1.0)
    assert np.allclose(plan_point(plan, 2.5), 2.5)
    assert np.allclose(plan_point(plan, H - 1), H - 1)
    assert np.allclose(plan_point(plan, H + 5), H - 1)


def test_replan_every_one_decides_every_period_and_commands_row_one():
    f = PlanFollower(1, 0.05, 0.05, TOL)
    assert f.due(np.zeros(7))
    assert np.allclose(f.commit(ramp()), 1.0)
    assert f.due(np.ones(7))


def test_a_plan_is_followed_row_by_row_for_replan_every_periods():
    f = PlanFollower(8, 0.05, 0.05, TOL)
    commands = [f.commit(ramp(0.0, 0.01))]
    while not f.due(commands[-1]):  # an arm that is where it was commanded
        commands.append(f.advance())
    assert np.allclose(np.array(commands)[:, 0], np.arange(1, 9) * 0.01)
    assert np.allclose(f.remaining()[0], 0.08)  # what following it further would command, from the last command on
    assert np.allclose(f.commit(ramp(1.0, 0.01)), 1.01)  # a new decision restarts at its own row 1


def test_an_arm_that_does_not_follow_makes_a_decision_due():
    f = PlanFollower(8, 0.05, 0.05, TOL)
    q0 = ramp(0.0, 0.01)[0]
    f.commit(ramp(0.0, 0.01))
    assert not f.due(q0 + 0.01 - 0.5 * TOL)   # lagging the last command within the tolerance
    f.advance()
    f.advance()
    assert f.due(q0)                          # still at the start, three rows (0.03 rad) behind the last command
    q_wrapped = q0 + 0.03 - 2 * np.pi * np.array([1, 0, 1, 0, 1, 0, 1])  # continuous joints reported wrapped
    assert not f.due(q_wrapped)


def test_rows_at_the_model_period_are_interpolated_at_the_control_period():
    f = PlanFollower(4, 0.05, 0.1, TOL)  # 20 Hz control, a model with rows 100 ms apart
    assert np.allclose(f.commit(ramp()), 0.5)
    assert np.allclose(f.advance(), 1.0)


def test_the_end_of_the_plan_makes_a_decision_due_and_drop_forgets_it():
    f = PlanFollower(16, 0.05, 0.05, TOL)
    f.commit(ramp()[:4])  # 3 rows to go
    f.advance()
    f.advance()
    assert f.due(ramp()[3]) and not f.has_next()
    with pytest.raises(RuntimeError, match="no plan row left"):
        f.advance()
    f.commit(ramp())
    f.drop()
    assert f.due(ramp()[1]) and f.plan is None


def test_replan_every_below_one_is_refused():
    with pytest.raises(ValueError, match="replan_every=0"):
        PlanFollower(0, 0.05, 0.05, TOL)
