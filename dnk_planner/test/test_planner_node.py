"""The planner node end to end: a real `planner_node` process over real DDS.

The test process plays the arm (publishes /joint_states through PlannerClient), sends goals
and obstacles, drives the lifecycle through its services and listens to everything the node
publishes. Each test run has its own ROS_DOMAIN_ID (scripts/test.sh, or the fallback below).
"""
from __future__ import annotations

import math
import os
import signal
import time
import numpy as np
import pytest

from dnk_planner.ros.domain import default_domain_id  # noqa: E402 - before any ROS import

default_domain_id()
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

from lifecycle_msgs.msg import State, Transition  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402

from dnk_msgs.msg import PlannerStatus  # noqa: E402
from dnk_planner.testing.models import build_arm_primitive_model  # noqa: E402
from dnk_planner.ros.node import MARKER_POINTS  # noqa: E402
from dnk_planner.ros.client import (PlannerClient, sphere, start_planner_process, stop_process,  # noqa: E402
                                target_position)
from dnk_planner.core.kinematics import HOME_POSITIONS, JOINT_VELOCITY_LIMITS, forward_kinematics  # noqa: E402

Q_HOME = np.array(HOME_POSITIONS)
NAMES = [f"joint_{i}" for i in range(1, 8)]


@pytest.fixture
def planner(request, client, arm_model):
    """A planner_node process with the parameters in the test's `params` marker."""
    marker = request.node.get_closest_marker("params")
    client.joint_names = NAMES
    client.hold_joints(Q_HOME)
    client.clear()
    proc = start_planner_process([f"model_path:={arm_model}", "marker_rate_hz:=2.0", *(marker.args if marker else ())])
    yield proc
    print(stop_process(proc))  # pytest shows the node's log when the test fails


def configure_and_activate(c: PlannerClient) -> None:
    assert c.transition(Transition.TRANSITION_CONFIGURE)
    assert c.lifecycle_state() == State.PRIMARY_STATE_INACTIVE
    assert c.transition(Transition.TRANSITION_ACTIVATE)
    assert c.lifecycle_state() == State.PRIMARY_STATE_ACTIVE


def ee_position(q: np.ndarray) -> np.ndarray:
    return forward_kinematics(q)[:3, 3]


def in_state(c: PlannerClient, state: int):
    return lambda: c.latest_status() is not None and c.latest_status().state == state and c.latest_status()


# ---------------------------------------------------------------------------------------------
def test_lifecycle_rate_and_status(client, planner):
    """configure/activate/deactivate; targets at ~20 Hz towards the goal; sane status."""
    c = client
    assert c.lifecycle_state() == State.PRIMARY_STATE_UNCONFIGURED
    configure_and_activate(c)
    start = ee_position(Q_HOME)
    goal = start + np.array([0.0, 0.15, -0.05])
    assert c.set_goal(goal).accepted
    c.wait_for(lambda: len(c.targets) >= 40, timeout=15, what="40 targets")
    # Rate from the node's own publish stamps: DDS delivery to this process may come in bursts.
    stamps = np.array([t.header.stamp.sec + t.header.stamp.nanosec * 1e-9 for t in c.targets[-30:]])
    rate = (len(stamps) - 1) / (stamps[-1] - stamps[0])
    assert 17.0 < rate < 23.0, f"target rate {rate:.1f} Hz, configured 20 Hz"
    target = c.targets[-1]
    assert target.header.frame_id == "base_link"
    p = target_position(target)
    assert np.linalg.norm(p - start) < 0.05, "one 50 ms step of a Gen3 cannot exceed 5 cm"
    # RViz markers: 64 candidate strips starting at the arm, exactly one drawn as the chosen plan.
    markers = c.wait_for(lambda: c.markers and c.markers[-1].markers, timeout=3, what="candidate markers")
    strips = [m for m in markers if m.action == m.ADD]
    assert len(strips) == 64 and all(len(m.points) == MARKER_POINTS for m in strips)
    best = [m for m in strips if m.scale.x > 0.004]
    assert len(best) == 1
    first, last = (np.array([q.x, q.y, q.z]) for q in (best[0].points[0], best[0].points[-1]))
    assert np.allclose(first, start, atol=1e-5), "every plan starts at the current end effector"
    assert np.allclose(last - first, 0.0, atol=0.5) and not np.allclose(last, first), "a plan that moves"
    st = c.latest_status()
    assert st.state == PlannerStatus.ACTIVE, st.message
    assert st.candidates == 64 and st.cycles >= 35
    assert math.isclose(st.distance_to_goal, float(np.linalg.norm(goal - start)), abs_tol=1e-6)
    decided = [s.last_latency_ms for s in c.status if math.isfinite(s.last_latency_ms)]  # NaN: no decision
    assert decided and 0.0 < decided[-1] < 50.0 and 0.0 < st.p95_latency_ms < 50.0
    assert math.isinf(st.min_clearance)  # no obstacles
    assert st.model_id.startswith("arm-primitives-v2:")
    c.wait_for(lambda: c.diagnostics, timeout=3, what="/diagnostics")
    assert c.diagnostics[-1].status[0].name == "dnk_planner: control loop"
    # A goal at the (resting) end effector is reached once it has been at rest for settle_time_s.
    assert c.set_goal(start, tolerance=0.02).accepted
    t0 = time.monotonic()
    c.wait_for(in_state(c, PlannerStatus.GOAL_REACHED), timeout=5, what="GOAL_REACHED")
    assert time.monotonic() - t0 >= 0.3 - 0.05, "GOAL_REACHED needs the 0.3 s settle time"
    assert c.transition(Transition.TRANSITION_DEACTIVATE)
    assert c.lifecycle_state() == State.PRIMARY_STATE_INACTIVE
    n = len(c.targets)
    time.sleep(0.5)
    assert len(c.targets) <= n + 1, "no targets after deactivate"


def test_obstacle_on_the_straight_line_is_avoided(client, planner):
    c = client
    configure_and_activate(c)
    start = ee_position(Q_HOME)
    goal = start + np.array([0.0, 0.3, 0.0])
    c.publish_obstacles([sphere("ball", (start + goal) / 2, 0.05)])
    time.sleep(0.3)
    assert c.set_goal(goal).accepted
    st = c.wait_for(lambda: (s := c.latest_status()) and s.state == PlannerStatus.ACTIVE
                    and math.isfinite(s.min_clearance) and s, timeout=10, what="ACTIVE with a finite clearance")
    assert st.min_clearance >= 0.03 - 1e-9, f"chosen plan clearance {st.min_clearance} below the 3 cm margin"


def test_bad_inputs_are_dropped_not_fatal(client, planner):
    c = client
    configure_and_activate(c)
    far = c.set_goal([2.0, 0.0, 0.5])
    assert not far.accepted and "reachable workspace" in far.message
    wrong = c.set_goal([0.4, 0.0, 0.4], frame="camera_link")
    assert not wrong.accepted and "camera_link" in wrong.message
    nan = c.set_goal([math.nan, 0.0, 0.4])
    assert not nan.accepted and "non-finite" in nan.message
    c.publish_obstacles([sphere("neg", [0.4, 0, 0.3], -0.1)])
    time.sleep(0.2)  # the node reads the latest array once per cycle
    c.publish_obstacles([sphere("ok", [0.4, 0, 0.3], 0.1)], frame="map")
    for bad in (JointState(name=NAMES, position=[math.nan] * 7),
                JointState(name=[f"arm_joint_{i}" for i in range(1, 8)], position=[0.0] * 7),
                JointState(name=NAMES, position=[0.0] * 6)):
        c.joint_state = bad
        time.sleep(0.2)
    c.hold_joints(Q_HOME)

    def counted():
        v = c.diagnostic_values()
        return v and int(v["dropped_joint_states"]) >= 3 and int(v["rejected_obstacle_arrays"]) == 2 \
            and int(v["rejected_goals"]) == 3
    c.wait_for(counted, timeout=5, what="diagnostics counting the dropped inputs")
    assert c.set_goal(ee_position(Q_HOME) + np.array([0.0, 0.1, 0.0])).accepted
    c.wait_for(in_state(c, PlannerStatus.ACTIVE), timeout=5, what="ACTIVE after bad input")
    assert planner.poll() is None, "the node must survive bad input"


def test_stale_joint_states_hold(client, planner):
    c = client
    configure_and_activate(c)
    assert c.set_goal(ee_position(Q_HOME) + np.array([0.0, 0.1, 0.0])).accepted
    c.wait_for(in_state(c, PlannerStatus.ACTIVE), what="ACTIVE")
    c.hold_joints(None)
    st = c.wait_for(in_state(c, PlannerStatus.HOLDING), timeout=3, what="HOLDING on stale joint states")
    assert "stale" in st.message
    time.sleep(0.1)
    hold = target_position(c.targets[-1])
    assert np.allclose(hold, ee_position(Q_HOME), atol=1e-6), "hold target = last known EE position"
    c.hold_joints(Q_HOME)
    c.wait_for(in_state(c, PlannerStatus.ACTIVE), timeout=3, what="ACTIVE again")


@pytest.mark.params("decision_deadline_ms:=0.001")
def test_deadline_misses_are_counted_and_the_late_plans_followed(client, planner):
    """Every decision overruns a 1 us deadline: counted, said in the status, and the arm is still
    commanded along the (late) decisions' plans."""
    c = client
    configure_and_activate(c)
    assert c.set_goal(ee_position(Q_HOME) + np.array([0.0, 0.2, 0.0])).accepted
    st = c.wait_for(lambda: (s := c.latest_status()) and s.deadline_misses >= 5 and s,
                    timeout=10, what="deadline misses")
    assert st.state == PlannerStatus.ACTIVE and "deadline miss" in st.message
    targets = [target_position(t) for t in c.targets[-4:]]
    steps = [np.linalg.norm(b - a) for a, b in zip(targets, targets[1:])]
    assert all(s > 1e-6 for s in steps), "targets advance along the plans"


def is_zero(twist) -> bool:
    return all(v == 0.0 for v in (twist.linear.x, twist.linear.y, twist.linear.z,
                                 twist.angular.x, twist.angular.y, twist.angular.z))


@pytest.mark.params("controller_mode:=twist")
def test_twist_bridge_and_every_stop_path_sends_a_zero_twist(client, planner):
    c = client
    configure_and_activate(c)
    assert c.set_goal(ee_position(Q_HOME) + np.array([0.0, 0.3, 0.0])).accepted
    c.wait_for(lambda: len(c.twists) >= 20, timeout=10, what="twist commands")
    v = np.array([[t.linear.x, t.linear.y, t.linear.z] for t in c.twists])
    assert 0.0 < np.linalg.norm(v, axis=1).max() <= 0.5 + 1e-9, "speed clamp 0.5 m/s"
    # accel clamp 0.4 m/s^2 on every command; a stop (zero twist, e.g. from the watchdog on a loaded
    # machine) may be abrupt, and the next command ramps up from it again
    moving = np.linalg.norm(v[1:], axis=1) > 0.0
    assert np.all(np.linalg.norm(np.diff(v, axis=0), axis=1)[moving] <= 0.4 * 0.05 + 1e-9), "accel clamp 0.4 m/s^2"
    # the arm (played by this test) does not move, so every cycle asks for the plan's first step again
    assert np.linalg.norm(v[-1]) > 0.05, "twist follows the plan's velocity, not a small P step"
    c.hold_joints(None)                                            # stale joint states -> hold
    c.wait_for(in_state(c, PlannerStatus.HOLDING), timeout=3, what="HOLDING")
    time.sleep(0.2)
    assert is_zero(c.twists[-1]), "stop command is a zero twist"
    c.hold_joints(Q_HOME)
    c.wait_for(lambda: not is_zero(c.twists[-1]), timeout=3, what="moving again")
    assert c.transition(Transition.TRANSITION_DEACTIVATE)          # deactivate -> zero twist
    time.sleep(0.3)
    assert is_zero(c.twists[-1])
    assert c.transition(Transition.TRANSITION_ACTIVATE)  # activation starts afresh: a new goal
    assert c.set_goal(ee_position(Q_HOME) + np.array([0.0, 0.3, 0.0])).accepted
    c.wait_for(lambda: not is_zero(c.twists[-1]), timeout=3, what="moving again")
    n = len(c.twists)
    planner.send_signal(signal.SIGINT)                             # process stop -> zero twist, exit 0
    assert planner.wait(timeout=10) == 0
    time.sleep(0.3)
    assert len(c.twists) > n and is_zero(c.twists[-1])


@pytest.mark.params("controller_mode:=joint_trajectory", "joint_prefix:=left_")
def test_joint_trajectory_bridge(client, planner):
    c = client
    names = [f"left_joint_{i}" for i in range(1, 8)]
    c.joint_state = JointState(name=names, position=[float(v) for v in Q_HOME])
    configure_and_activate(c)
    assert c.set_goal(ee_position(Q_HOME) + np.array([0.0, 0.1, 0.0])).accepted
    c.wait_for(lambda: len(c.trajectories) >= 5, timeout=10, what="joint trajectories")
    traj, target = c.trajectories[-1], target_position(c.targets[-1])
    assert traj.joint_names == names and len(traj.points) == 1 and len(traj.points[0].positions) == 7
    assert traj.points[0].time_from_start.nanosec == 50_000_000
    q_cmd = np.array(traj.points[0].positions)
    assert np.linalg.norm(ee_position(q_cmd) - target) < 1e-6, "the command is the plan's next row (no IK)"
    assert np.all(np.abs(q_cmd - Q_HOME) <= JOINT_VELOCITY_LIMITS * 0.05 + 1e-9), "within the joint velocity limits"
    assert np.abs(q_cmd - Q_HOME).max() > 1e-3, "and moving"


@pytest.mark.params("controller_mode:=joint_trajectory")
def test_an_arm_moving_inside_the_goal_tolerance_is_stopped_there(client, planner):
    """Inside the tolerance but not at rest: the node sends stop commands at the measured joints (no plan
    that could carry the arm out again), and GOAL_REACHED once the arm has been at rest settle_time_s."""
    c = client
    configure_and_activate(c)
    q_b = Q_HOME + np.array([0.0, 0.0, 0.0, 0.01, 0.0, 0.0, 0.0])  # another joint state, its end effector ~4 mm away
    assert 0.002 < np.linalg.norm(ee_position(q_b) - ee_position(Q_HOME)) < 0.008
    goal = ee_position(Q_HOME) + 0.5 * (ee_position(q_b) - ee_position(Q_HOME))
    assert c.set_goal(goal, tolerance=0.01).accepted
    c.wait_for(in_state(c, PlannerStatus.GOAL_REACHED), timeout=5, what="GOAL_REACHED at rest")
    c.trajectories.clear()
    c.status.clear()
    assert c.set_goal(goal + [0.0, 0.0, 0.001], tolerance=0.01).accepted
    for k in range(45):  # 1.6 s of an arm moving at centimetres per second between two states inside the tolerance
        c.hold_joints(q_b if k % 2 else Q_HOME)
        time.sleep(0.035)  # not a multiple of the 50 ms cycle: successive cycles see the arm move
    inside = [s for s in c.status if "inside the goal tolerance" in s.message]
    assert len(inside) >= 15 and all(s.state == PlannerStatus.ACTIVE for s in inside)
    assert not any(s.state == PlannerStatus.GOAL_REACHED for s in c.status), "moving is not settled"
    commanded = np.array([t.points[0].positions for t in c.trajectories])
    assert len(commanded) >= 15
    at_measured = np.minimum(np.abs(commanded - Q_HOME).max(axis=1), np.abs(commanded - q_b).max(axis=1))
    assert at_measured.max() < 1e-6, "every command is a stop at a measured state"
    c.hold_joints(Q_HOME)
    c.wait_for(in_state(c, PlannerStatus.GOAL_REACHED), timeout=3, what="GOAL_REACHED once at rest")


def test_configure_fails_on_missing_or_corrupt_model(client, tmp_path):
    c = client
    for path, expected in ((tmp_path / "nope.onnx", "nope"), (tmp_path / "bad.onnx", "sha256")):
        if path.name == "bad.onnx":
            build_arm_primitive_model(path, horizon=32)
            path.write_bytes(b"not an onnx file")
        proc = start_planner_process([f"model_path:={path}"])
        try:
            assert not c.transition(Transition.TRANSITION_CONFIGURE)
            assert c.lifecycle_state() == State.PRIMARY_STATE_UNCONFIGURED
        finally:
            log = stop_process(proc)
        assert "configure failed" in log and expected in log.lower(), log


def test_configure_fails_on_out_of_range_parameter(client, arm_model):
    proc = start_planner_process([f"model_path:={arm_model}", "rate_hz:=900.0"])
    try:
        assert not client.transition(Transition.TRANSITION_CONFIGURE)
        assert client.lifecycle_state() == State.PRIMARY_STATE_UNCONFIGURED
    finally:
        log = stop_process(proc)
    assert "configure failed" in log and "'rate_hz'" in log and "500" in log, log
