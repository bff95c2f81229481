"""What dnk_sim.launch.py and dnk_replay.launch.py compose, as plain processes (no `launch`
here): sim_gen3 and planner_node with this package's params files plus bag_record drive the
simulated arm to a goal; then bag_replay feeds the recorded planner inputs to a fresh planner,
which must see the goal reached too."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from geometry_msgs.msg import PoseStamped
from rosbags.rosbag2 import Reader
from sensor_msgs.msg import JointState

from bringup_testing import CONFIG_DIR, goal_from, start_sim_and_planner, wait_until
from dnk_bringup.msg_types import make_typestore
from dnk_planner.ros.topics import PLANNER_INPUTS
from dnk_msgs.msg import PlannerStatus
from dnk_planner.core.kinematics import forward_kinematics


def drive_to_goal(spawn, probe, model: Path, mode: str, offset, subscribers: int = 1) -> list[PlannerStatus]:
    """Start sim + planner in `mode`, send a goal, wait for GOAL_REACHED; returns the statuses."""
    states = probe.collect(JointState, "/joint_states")
    statuses = probe.collect(PlannerStatus, "/dnk/status")
    sim, planner = start_sim_and_planner(spawn, model, mode)
    logs = lambda: "\n".join(spawn.log(p)[-3000:] for p in (sim, planner))  # noqa: E731
    assert wait_until(lambda: len(states) > 5 and len(statuses) > 2 and statuses[-1].message == "waiting for a goal",
                      30.0), logs()  # the planner has joint states: a goal is solved from them
    msg, goal = goal_from(states[-1], offset)
    pub = probe.node.create_publisher(PoseStamped, "/goal_pose", 10)
    assert wait_until(lambda: pub.get_subscription_count() >= subscribers, 10.0), logs()
    pub.publish(msg)
    assert wait_until(lambda: statuses[-1].state == PlannerStatus.GOAL_REACHED, 30.0), \
        f"{statuses[-1].state} {statuses[-1].message}\n{logs()}"
    reached = forward_kinematics(np.array(states[-1].position))[:3, 3]
    assert np.linalg.norm(reached - goal) < 0.02  # planner.yaml goal_tolerance_m 0.01 + sim lag
    return statuses


def test_pose_mode_reaches_goal_bag_records_it_and_replays(spawn, probe, arm_model, tmp_path) -> None:
    bag = tmp_path / "run"
    recorder = spawn("dnk_bringup.bag_record", "--ros-args", "-p", f"output:={bag}")
    drive_to_goal(spawn, probe, arm_model, "pose", [0.06, 0.10, -0.04], subscribers=2)  # planner + recorder
    assert spawn.interrupt(recorder) == 0, spawn.log(recorder)
    for proc in spawn.children:  # sim and planner
        spawn.interrupt(proc)
    store = make_typestore()
    counts: dict[str, int] = {}
    reached_in_bag = False
    with Reader(bag) as reader:
        for conn, _, raw in reader.messages():
            counts[conn.topic] = counts.get(conn.topic, 0) + 1
            if conn.topic == "/dnk/status":
                reached_in_bag |= store.deserialize_cdr(raw, conn.msgtype).state == PlannerStatus.GOAL_REACHED
    assert counts.get("/goal_pose") == 1 and counts.get("/joint_states", 0) > 100, counts
    assert counts.get("/dnk/target_pose", 0) > 10 and reached_in_bag, counts

    # dnk_replay.launch.py: the planner's recorded inputs into a fresh planner.
    statuses = probe.collect(PlannerStatus, "/dnk/status")
    planner = spawn("dnk_planner.ros.node", "--autostart", "--ros-args", "--params-file", str(CONFIG_DIR / "planner.yaml"),
                    "-p", f"model_path:={arm_model}", "-p", "provider:=cpu", "-p", "use_sim_time:=true")
    player = spawn("dnk_bringup.bag_replay", str(bag), "--topics", *PLANNER_INPUTS, "--wait-for-subscribers", "10",
                   "--clock")  # the recorded stamps are judged against the bag's time
    assert wait_until(lambda: player.poll() is not None, 40.0) and player.returncode == 0, spawn.log(player)
    seen = [s.state for s in statuses]
    # ACTIVE while the recorded arm moves, GOAL_REACHED once it arrives (then HOLDING: the replay ended)
    assert PlannerStatus.ACTIVE in seen and PlannerStatus.GOAL_REACHED in seen, (seen, spawn.log(planner))
    assert seen.index(PlannerStatus.GOAL_REACHED) > seen.index(PlannerStatus.ACTIVE)
