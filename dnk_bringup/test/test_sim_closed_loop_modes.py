"""The planner's twist and joint_trajectory bridges drive sim_gen3 to a goal (real processes,
dnk_bringup's params files). The sim listens only to the mode's ros2_kortex topic, so the
pose targets the planner also publishes cannot do the work."""
from __future__ import annotations

import numpy as np
import pytest
from bringup_testing import KORTEX_DESCRIPTION, goal_from, start_sim_and_planner, wait_until
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import JointState
from test_sim_closed_loop import drive_to_goal

from dnk_msgs.msg import ArmContacts, ObstacleArray, PlannerStatus
from dnk_planner.core.kinematics import forward_kinematics
from dnk_planner.ros.client import box, sphere
from dnk_planner.ros.topics import SIM_CONTACTS


@pytest.mark.parametrize("mode", ["twist", "joint_trajectory"])
def test_mode_reaches_goal(mode, spawn, probe, arm_model) -> None:
    drive_to_goal(spawn, probe, arm_model, mode, [-0.05, 0.08, 0.05])
    assert probe.node.count_subscribers("/dnk/target_pose") == 0  # sim_gen3 ignores pose targets here


@pytest.mark.skipif(not KORTEX_DESCRIPTION.is_dir(), reason=f"Kinova's description not at {KORTEX_DESCRIPTION}")
def test_goal_behind_an_obstacle_reached_without_arm_contact_in_mujoco(spawn, probe, arm_model) -> None:
    """Kinova's URDF + meshes in MuJoCo, a ball on the straight end-effector line and a table: the arm
    reaches the goal and MuJoCo reports no contact of any link, measured by the sim, not the planner."""
    states = probe.collect(JointState, "/joint_states")
    statuses = probe.collect(PlannerStatus, "/dnk/status")
    reports = probe.collect(ArmContacts, SIM_CONTACTS)
    sim, planner = start_sim_and_planner(spawn, arm_model, "joint_trajectory",
                                         sim_params=(f"description_path:={KORTEX_DESCRIPTION}",))
    logs = lambda: "\n".join(spawn.log(p)[-3000:] for p in (sim, planner))  # noqa: E731
    assert wait_until(lambda: len(states) > 5 and statuses and statuses[-1].message == "waiting for a goal", 30.0), logs()
    msg, goal = goal_from(states[-1], [0.0, 0.30, -0.10])
    start = forward_kinematics(np.array(states[-1].position))[:3, 3]
    scene = [sphere("ball", (start + goal) / 2, 0.06), box("table", [start[0], start[1], 0.0], [1.2, 1.2, 0.04])]
    pub_obstacles = probe.node.create_publisher(ObstacleArray, "/dnk/obstacles", 10)
    assert wait_until(lambda: pub_obstacles.get_subscription_count() >= 2, 10.0), logs()  # planner + sim
    pub_obstacles.publish(ObstacleArray(header=msg.header, obstacles=scene))
    assert wait_until(lambda: reports and reports[-1].min_link_distance < 1.0, 10.0), logs()  # the sim has them
    first = len(reports)
    pub_goal = probe.node.create_publisher(PoseStamped, "/goal_pose", 10)
    assert wait_until(lambda: pub_goal.get_subscription_count() >= 1, 10.0)
    pub_goal.publish(msg)
    assert wait_until(lambda: statuses[-1].state == PlannerStatus.GOAL_REACHED, 40.0), \
        f"{statuses[-1].state} {statuses[-1].message}\n{logs()}"
    reached = forward_kinematics(np.array(states[-1].position))[:3, 3]
    assert np.linalg.norm(reached - goal) < 0.012
    during = reports[first:]
    assert sum(r.contact_steps for r in during) == 0, [r.contacts for r in during if r.contact_steps]
    assert min(r.min_link_distance for r in during) > 0.0
    assert "Kinova URDF" in spawn.log(sim)
    assert during[-1].real_time_factor > 0.8, during[-1].real_time_factor
