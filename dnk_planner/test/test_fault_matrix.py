"""Fault matrix: every bad input a real planner_node process can get over DDS, one case each.

One node process runs the whole module (configured, active, a goal set). Each case injects one
fault and asserts the four things a user relies on: the process stays alive, the status keeps
its rate, the fault is counted in /diagnostics under its own key (and said in the status or the
service answer), and the node recovers when good input comes back. Model and parameter faults
that need a fresh process have their own cases at the end.
"""
from __future__ import annotations

import json
import math
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from dnk_planner.ros.domain import default_domain_id  # noqa: E402 - before any ROS import

default_domain_id()
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

from geometry_msgs.msg import PoseStamped  # noqa: E402
from lifecycle_msgs.msg import State, Transition  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402

from dnk_msgs.msg import Obstacle, PlannerStatus  # noqa: E402
from dnk_planner.core.kinematics import HOME_POSITIONS, forward_kinematics  # noqa: E402
from dnk_planner.core.manifest import read_manifest, save_manifest, sha256_file  # noqa: E402
from dnk_planner.ros.client import PlannerClient, box, sphere, start_planner_process, stop_process  # noqa: E402

Q_HOME = np.array(HOME_POSITIONS)
NAMES = [f"joint_{i}" for i in range(1, 8)]
EE_HOME = forward_kinematics(Q_HOME)[:3, 3]
GOAL = EE_HOME + np.array([0.0, 0.2, 0.0])
RATE_HZ = 20.0


@pytest.fixture(scope="module")
def node(client, arm_model):
    """One active planner for the module, tracking GOAL (which the static arm never reaches)."""
    client.hold_joints(Q_HOME)
    proc = start_planner_process([f"model_path:={arm_model}", "marker_rate_hz:=0.0"])
    assert client.configure_and_activate()
    assert client.set_goal(GOAL).accepted
    client.wait_for(lambda: active(client), 10, "ACTIVE")
    yield proc
    print(stop_process(proc))


@pytest.fixture
def live(client, node):
    """Each case starts from good input and an ACTIVE node, and must leave it alive. What the node
    logged during the case is printed (pytest shows it when the case fails)."""
    restore(client)
    client.wait_for(lambda: active(client), 10, "ACTIVE before the case")
    logged = len(node.output())
    yield client
    print("planner_node output during the case:\n" + node.output()[logged:][-6000:])
    assert node.poll() is None, "the planner process died"


def restore(c: PlannerClient) -> None:
    c.stamp_offset_s = 0.0
    c.hold_joints(Q_HOME)
    c.publish_obstacles([])
    time.sleep(0.15)


def active(c: PlannerClient) -> PlannerStatus | None:
    s = c.latest_status()
    return s if s is not None and s.state == PlannerStatus.ACTIVE else None


def counter(c: PlannerClient, key: str) -> int:
    c.wait_for(lambda: key in c.diagnostic_values(), 5, f"diagnostics key {key}")
    return int(c.diagnostic_values()[key])


def wait_counter_above(c: PlannerClient, key: str, before: int, timeout: float = 5.0) -> int:
    return c.wait_for(lambda: (v := int(c.diagnostic_values().get(key, before))) > before and v, timeout,
                      f"diagnostics {key} > {before}")


def assert_status_rate(c: PlannerClient, seconds: float = 1.5) -> None:
    """The status kept its rate over the last `seconds` (node's publish stamps, not DDS arrival). A gap
    says whether the node stalled (consecutive cycle numbers) or messages were lost on the way."""
    n0 = len(c.status)
    time.sleep(seconds)
    window = c.status[n0:]
    stamps = np.array([s.header.stamp.sec + s.header.stamp.nanosec * 1e-9 for s in window])
    cycles = np.array([s.cycles for s in window])
    assert len(stamps) >= 0.8 * seconds * RATE_HZ, f"{len(stamps)} status messages in {seconds} s"
    gaps = np.diff(stamps)
    k = int(np.argmax(gaps))
    assert gaps[k] < 3.0 / RATE_HZ, (
        f"status gap of {gaps[k]:.3f} s between cycles {cycles[k]} and {cycles[k + 1]} "
        f"({'the node stalled' if cycles[k + 1] == cycles[k] + 1 else 'messages lost between node and client'})")


def recovers(c: PlannerClient) -> None:
    restore(c)
    c.wait_for(lambda: active(c), 5, "ACTIVE after good input came back")


def joint_state(q=Q_HOME, names=NAMES) -> JointState:
    return JointState(name=list(names), position=[float(v) for v in q])


# ------------------------------------------------------------------ joint states
@pytest.mark.parametrize("bad, key", [
    (joint_state(Q_HOME + [0.0, 3.0 - Q_HOME[1], 0, 0, 0, 0, 0]), "joint_states.out_of_limits"),   # joint_2 = 3.0 > 2.24
    (joint_state(Q_HOME + [4.0, 0, 0, 0, 0, 0, 0]), "joint_states.out_of_limits"),   # continuous joint not wrapped
    (joint_state([math.nan] + list(Q_HOME[1:])), "joint_states.non_finite"),
    (joint_state([math.inf] + list(Q_HOME[1:])), "joint_states.non_finite"),
    (joint_state(Q_HOME, ["joint_1", "joint_1", "joint_3", "joint_4", "joint_5", "joint_6", "joint_7"]),
     "joint_states.names"),                                                          # joint_2 missing, joint_1 twice
    (joint_state(Q_HOME, [f"arm_joint_{i}" for i in range(1, 8)]), "joint_states.names"),
    (JointState(name=NAMES, position=list(Q_HOME[:6])), "joint_states.names"),
], ids=["beyond-limit", "unwrapped", "nan", "inf", "duplicate-name", "wrong-prefix", "count"])
def test_bad_joint_states_are_refused_and_the_last_good_state_goes_stale(live, bad, key):
    c = live
    before = counter(c, key)
    c.joint_state = bad
    wait_counter_above(c, key, before)
    st = c.wait_for(lambda: (s := c.latest_status()) and s.state == PlannerStatus.HOLDING and s, 3,
                    "HOLDING once the last good state is stale")
    assert "stale" in st.message
    assert_status_rate(c)
    recovers(c)


@pytest.mark.parametrize("offset_s, key", [(3600.0, "joint_states.stamp_future"),
                                           (-3600.0, "joint_states.stamp_stale"),
                                           (-time.time() + 1.0, "joint_states.stamp_stale")],  # 1970
                         ids=["future", "hour-old", "1970"])
def test_joint_state_stamps_are_checked(live, offset_s, key):
    c = live
    before = counter(c, key)
    c.stamp_offset_s = offset_s
    wait_counter_above(c, key, before)
    c.wait_for(lambda: (s := c.latest_status()) and s.state == PlannerStatus.HOLDING, 3, "HOLDING")
    assert_status_rate(c)
    recovers(c)


def fresh_counters(c: PlannerClient, keys: tuple[str, ...]) -> dict[str, int]:
    """Counters from a diagnostic published after this call: the latest one received may be up to a
    period old and miss faults the previous case injected just before it restored good input."""
    c.diagnostics.clear()
    c.wait_for(lambda: c.diagnostics, 5, "a fresh diagnostic")
    return {k: counter(c, k) for k in keys}


def test_zero_stamps_fall_back_to_reception_time(live):
    c = live
    keys = ("joint_states.stamp_future", "joint_states.stamp_stale")
    before = fresh_counters(c, keys)
    c.stamp_offset_s = None
    time.sleep(1.0)
    assert active(c), c.latest_status().message
    assert fresh_counters(c, keys) == before


# ------------------------------------------------------------------ obstacles
@pytest.mark.parametrize("obstacles, frame, key", [
    ([sphere("neg", [0.4, 0.0, 0.3], -0.1)], "base_link", "obstacles.invalid"),
    ([sphere("huge", [0.4, 0.0, 0.3], 50.0)], "base_link", "obstacles.invalid"),
    ([box("flat", [0.4, 0.0, 0.3], [0.1, 0.1, 0.1], (0.0, 0.0, 0.0, 0.0))], "base_link", "obstacles.invalid"),
    ([sphere("nan", [math.nan, 0.0, 0.3], 0.1)], "base_link", "obstacles.invalid"),
    ([Obstacle(id="cone", shape=7, dimensions=[0.1])], "base_link", "obstacles.invalid"),
    ([sphere("a", [0.4, 0.0, 0.3], 0.05), sphere("a", [0.5, 0.0, 0.3], 0.05)], "base_link", "obstacles.invalid"),
    ([sphere("ok", [0.4, 0.0, 0.3], 0.05)], "camera_link", "obstacles.frame"),
], ids=["negative-radius", "huge", "zero-quaternion", "nan-center", "unknown-shape", "duplicate-id", "wrong-frame"])
def test_bad_obstacle_arrays_keep_the_previous_set(live, obstacles, frame, key):
    c = live
    keep = sphere("kept", EE_HOME + [0.3, -0.3, 0.3], 0.05)
    c.publish_obstacles([keep])
    c.diagnostics.clear()  # a diagnostic from before the publish must not count
    c.wait_for(lambda: c.diagnostic_values().get("obstacles_planned") == "1", 3, "the good set in use")
    before = counter(c, key)
    c.publish_obstacles(obstacles, frame=frame)
    wait_counter_above(c, key, before)
    time.sleep(1.1)  # one more diagnostics period
    assert c.diagnostic_values()["obstacles_planned"] == "1", "the previous good set is kept"
    assert active(c)
    assert_status_rate(c)
    recovers(c)


def test_ten_thousand_obstacles_are_refused_before_deserialization(live):
    c = live
    flood = [sphere(f"o{k}", [2.0 + 0.01 * (k % 100), 0.01 * (k // 100), 0.0], 0.004) for k in range(10_000)]
    before = counter(c, "obstacles.oversized")
    n0 = len(c.status)
    for _ in range(10):
        c.publish_obstacles(flood)
        time.sleep(0.1)
    wait_counter_above(c, "obstacles.oversized", before + 9)
    stamps = np.array([s.header.stamp.sec + s.header.stamp.nanosec * 1e-9 for s in c.status[n0:]])
    assert np.diff(stamps).max() < 3.0 / RATE_HZ, "the loop kept its rate during the flood"
    assert active(c)
    assert_status_rate(c)
    recovers(c)


def test_obstacle_cap_keeps_the_nearest(live):
    """200 obstacles (under max_obstacle_array): the 16 nearest the arm are planned against, the rest counted."""
    c = live
    near = [sphere(f"near{k}", EE_HOME + [0.25, -0.3 + 0.04 * k, 0.35], 0.01) for k in range(16)]
    far = [sphere(f"far{k}", [-0.9, -1.0 + 0.01 * k, 1.5], 0.01) for k in range(184)]
    c.publish_obstacles(far[:92] + near + far[92:])
    c.diagnostics.clear()
    v = c.wait_for(lambda: (d := c.diagnostic_values()) and d.get("obstacles_left_out") == "184" and d, 5,
                   "184 obstacles left out")
    assert v["obstacles_planned"] == "16"
    assert active(c)
    assert_status_rate(c)
    recovers(c)


# ------------------------------------------------------------------ goals
def test_goal_inside_an_obstacle_is_refused(live):
    c = live
    target = EE_HOME + np.array([0.0, -0.2, 0.0])
    c.publish_obstacles([sphere("ball", target, 0.05)])
    time.sleep(0.2)
    before = counter(c, "goals.blocked")
    inside = c.set_goal(target)
    assert not inside.accepted and "inside obstacle 'ball'" in inside.message, inside.message
    margin = c.set_goal(target + [0.0, 0.0, 0.065])   # 1.5 cm from the surface, inside the 3 cm margin
    assert not margin.accepted and "safety margin" in margin.message, margin.message
    wait_counter_above(c, "goals.blocked", before + 1)
    assert active(c), "the previous goal is still tracked"
    recovers(c)


def test_obstacle_arriving_on_the_goal_reports_unreachable_then_recovers(live):
    c = live
    c.publish_obstacles([sphere("dropped_on_goal", GOAL, 0.06)])
    st = c.wait_for(lambda: (s := c.latest_status()) and s.state == PlannerStatus.GOAL_UNREACHABLE and s, 3,
                    "GOAL_UNREACHABLE")
    assert "dropped_on_goal" in st.message
    assert_status_rate(c)
    recovers(c)


@pytest.mark.parametrize("position, frame, words", [
    ([2.0, 0.0, 0.5], "base_link", "reachable workspace"),
    ([0.4, 0.0, 0.4], "camera_link", "camera_link"),
    ([math.nan, 0.0, 0.4], "base_link", "non-finite"),
], ids=["far", "frame", "nan"])
def test_unreachable_goals_are_refused(live, position, frame, words):
    c = live
    before = counter(c, "goals.rejected")
    answer = c.set_goal(position, frame=frame)
    assert not answer.accepted and words in answer.message
    wait_counter_above(c, "goals.rejected", before)
    assert active(c)


def test_goal_spam_is_bounded(live):
    """500 /goal_pose messages and 200 SetGoal calls as fast as they are answered: the loop keeps its rate."""
    c = live
    before = counter(c, "goals.rate")
    n0 = len(c.status)
    msg = PoseStamped()
    msg.header.frame_id = "base_link"
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in GOAL)
    answers = []
    for _ in range(25):  # 8 calls in flight at a time: a service's request queue (depth 10) drops more
        for _ in range(20):
            c.pub_goal.publish(msg)
        futures = [c._set_goal.call_async(c._set_goal.srv_type.Request(goal=msg, position_tolerance=0.01))
                   for _ in range(8)]
        c.wait_for(lambda: all(f.done() for f in futures), 10, "SetGoal answers")
        answers += [f.result() for f in futures]
    assert any(a.accepted for a in answers) and any("max_goal_rate_hz" in a.message for a in answers)
    wait_counter_above(c, "goals.rate", before)
    stamps = np.array([s.header.stamp.sec + s.header.stamp.nanosec * 1e-9 for s in c.status[n0:]])
    assert np.diff(stamps).max() < 3.0 / RATE_HZ
    assert active(c)
    assert_status_rate(c)


# ------------------------------------------------------------------ parameters and lifecycle
def test_bad_parameter_is_refused_when_set(live):
    c = live
    before = counter(c, "parameters.refused")
    result = c.set_parameters(stale_joint_state_timeout_s=-1.0)[0]
    assert not result.successful and "stale_joint_state_timeout_s" in result.reason, result.reason
    assert c.get_parameter("stale_joint_state_timeout_s") == 0.5, "the old value stays"
    assert c.set_parameters(marker_rate_hz=1.0)[0].successful, "a valid change is still accepted"
    wait_counter_above(c, "parameters.refused", before)
    assert active(c)


def test_lifecycle_cycling(live):
    c = live
    for k in range(5):
        assert c.transition(Transition.TRANSITION_DEACTIVATE), f"deactivate {k}"
        assert c.transition(Transition.TRANSITION_CLEANUP), f"cleanup {k}"
        assert c.lifecycle_state() == State.PRIMARY_STATE_UNCONFIGURED
        assert c.transition(Transition.TRANSITION_CONFIGURE), f"configure {k}"
        assert c.transition(Transition.TRANSITION_ACTIVATE), f"activate {k}"
    assert c.set_goal(GOAL).accepted
    c.wait_for(lambda: active(c), 5, "ACTIVE after 5 cycles")
    assert_status_rate(c)


def test_a_paused_process_is_counted_as_a_loop_stall_and_the_loop_resumes(live, node):
    """The OS stops the node for 0.5 s (SIGSTOP/SIGCONT, what a swapped-out or preempted process
    sees): the stall is counted and explained, and the loop goes on at its rate."""
    c = live
    before = counter(c, "loop_stalls")
    os.kill(node.pid, signal.SIGSTOP)
    time.sleep(0.5)
    os.kill(node.pid, signal.SIGCONT)
    wait_counter_above(c, "loop_stalls", before)
    assert float(c.diagnostic_values()["max_tick_gap_ms"]) >= 450.0
    c.wait_for(lambda: "control loop stalled" in node.output(), 3, "the stall explained in the node's log")
    # the first tick after the pause may hold (its joint state is 0.5 s old); fresh ones make it ACTIVE
    c.wait_for(lambda: active(c), 2, "ACTIVE after the pause")
    assert_status_rate(c)


# ------------------------------------------------------------------ models (fresh processes)
def _broken_models(good: Path, tmp: Path) -> dict[str, tuple[Path, str]]:
    """name -> (model path, words the configure error must contain)."""
    cases: dict[str, tuple[Path, str]] = {"missing": (tmp / "nope.onnx", "not found")}
    empty = tmp / "empty.onnx"
    empty.write_bytes(b"")
    save_manifest(read_manifest(good).model_copy(update={"onnx_sha256": sha256_file(empty)}), empty)
    cases["empty"] = (empty, "empty (0 bytes)")
    deep = tmp / "deep.onnx"
    deep.write_bytes(good.read_bytes())
    deep.with_suffix(".json").write_text("[" * 100_000 + "]" * 100_000)
    cases["deep-manifest"] = (deep, "nested too deeply")
    mismatch = tmp / "mismatch.onnx"
    mismatch.write_bytes(good.read_bytes() + b"\0")
    save_manifest(read_manifest(good), mismatch)
    cases["hash-mismatch"] = (mismatch, "onnx_sha256")
    corrupt = tmp / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07" + os.urandom(64))
    save_manifest(read_manifest(good).model_copy(update={"onnx_sha256": sha256_file(corrupt)}), corrupt)
    cases["corrupt"] = (corrupt, "onnx")
    loco = tmp / "loco.onnx"
    loco.write_bytes(good.read_bytes())
    raw = json.loads(good.with_suffix(".json").read_text())
    raw["task"] = "halfcheetah"
    loco.with_suffix(".json").write_text(json.dumps(raw))
    cases["wrong-task"] = (loco, "task")
    return cases


@pytest.mark.parametrize("case", ["missing", "empty", "deep-manifest", "hash-mismatch", "corrupt", "wrong-task"])
def test_bad_model_fails_configure_with_its_reason_then_a_good_one_loads(arm_model, tmp_path, case):
    path, words = _broken_models(arm_model, tmp_path)[case]
    proc = start_planner_process([f"model_path:={path}"], node_name="dnk_planner_faults")
    faults = PlannerClient(node_name="dnk_planner_faults")
    try:
        assert not faults.transition(Transition.TRANSITION_CONFIGURE)
        assert faults.lifecycle_state() == State.PRIMARY_STATE_UNCONFIGURED
        assert faults.set_parameters(model_path=str(arm_model))[0].successful
        assert faults.transition(Transition.TRANSITION_CONFIGURE), "a good model configures after a bad one"
    finally:
        faults.close()
        log = stop_process(proc)
    assert proc.returncode == 0, log
    failure = next((line for line in log.splitlines() if "configure failed" in line), "")
    assert words in failure, log
