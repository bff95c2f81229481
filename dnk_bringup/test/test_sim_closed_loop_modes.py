"""The planner's twist and joint_trajectory bridges drive sim_gen3 to a goal (real processes,
dnk_bringup's params files). The sim listens only to the mode's ros2_kortex topic, so the
pose targets the planner also publishes cannot do the work."""
from __future__ import annotations

import pytest

from test_sim_closed_loop import arm_model, drive_to_goal  # noqa: F401  (fixture)


@pytest.mark.parametrize("mode", ["twist", "joint_trajectory"])
def test_mode_reaches_goal(mode, spawn, probe, arm_model) -> None:  # noqa: F811
    drive_to_goal(spawn, probe, arm_model, mode, [-0.05, 0.08, 0.05])
    assert probe.node.count_subscribers("/dnk/target_pose") == 0  # sim_gen3 ignores pose targets here
