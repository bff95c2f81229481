"""bag_record and bag_replay over real DDS: record live topics (incl. dnk_msgs), stop with
SIGINT, read the MCAP bag back with rosbags, replay it into another process."""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
import yaml
from ament_index_python.packages import get_package_share_directory
from dnk_msgs.msg import Obstacle, ObstacleArray, PlannerStatus
from geometry_msgs.msg import PoseStamped
from rclpy.duration import Duration
from rclpy.serialization import deserialize_message, serialize_message
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import JointState
from std_msgs.msg import String

from dnk_bringup.msg_types import make_typestore
from bringup_testing import wait_until

JOINTS = [f"joint_{i}" for i in range(1, 8)]


def _messages() -> dict[str, list]:
    """Distinct messages per topic, so a lost or reordered one is noticed."""
    states = []
    for k in range(40):
        m = JointState(name=JOINTS, position=[0.01 * k + j for j in range(7)], velocity=[0.0] * 7)
        m.header.stamp.sec, m.header.frame_id = k, "base_link"
        states.append(m)
    obstacles = []
    for k in range(5):
        sphere = Obstacle(id=f"ball{k}", shape=Obstacle.SPHERE, dimensions=[0.05 + 0.01 * k])
        sphere.pose.position.x = 0.4 + 0.01 * k
        box = Obstacle(id="table", shape=Obstacle.BOX, dimensions=[1.0, 0.6, 0.05])
        box.pose.orientation.z, box.pose.orientation.w = 0.7071067811865476, 0.7071067811865476
        arr = ObstacleArray(obstacles=[sphere, box])
        arr.header.frame_id = "base_link"
        obstacles.append(arr)
    status = [PlannerStatus(state=PlannerStatus.ACTIVE, cycles=k, candidates=64, model_id="m", message=f"c{k}")
              for k in range(10)]
    goal = PoseStamped()
    goal.header.frame_id = "base_link"
    goal.pose.position.x, goal.pose.position.z = 0.5, 0.3
    return {"/joint_states": states, "/dnk/obstacles": obstacles, "/dnk/status": status, "/goal_pose": [goal]}


TYPES = {"/joint_states": JointState, "/dnk/obstacles": ObstacleArray, "/dnk/status": PlannerStatus,
         "/goal_pose": PoseStamped}


@pytest.fixture
def recorded_bag(spawn, probe, tmp_path: Path):
    """Record _messages() from the probe with bag_record, stop it with SIGINT; returns (bag, sent)."""
    bag = tmp_path / "bag"
    recorder = spawn("dnk_bringup.bag_record", "--ros-args", "-p", f"output:={bag}")
    publishers = {t: probe.node.create_publisher(TYPES[t], t, 100) for t in TYPES}
    subscribed = lambda: all(p.get_subscription_count() > 0 for p in publishers.values())  # noqa: E731
    wait_until(lambda: recorder.poll() is not None or subscribed(), 20.0)
    assert subscribed(), spawn.log(recorder)
    sent = _messages()
    for k in range(40):  # interleaved, 10 ms apart: the recorded timing is 0.4 s long
        for topic, msgs in sent.items():
            if k < len(msgs):
                publishers[topic].publish(msgs[k])
        time.sleep(0.01)
    for pub in publishers.values():  # every message is in the recorder's queue before SIGINT
        assert pub.wait_for_all_acked(Duration(seconds=10.0))
    assert spawn.interrupt(recorder) == 0, spawn.log(recorder)
    return bag, sent


def test_record_then_read_back_and_replay(recorded_bag, spawn, probe) -> None:
    bag, sent = recorded_bag
    info = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert info["version"] == 9 and info["storage_identifier"] == "mcap"
    assert info["ros_distro"] == (os.environ.get("ROS_DISTRO") or "jazzy")  # as ros2 bag writes it
    assert info["message_count"] == sum(len(v) for v in sent.values())
    by_topic = {t["topic_metadata"]["name"]: t for t in info["topics_with_message_count"]}
    assert {t: by_topic[t]["message_count"] for t in sent} == {t: len(v) for t, v in sent.items()}
    # The type hash rosbag2 checks is the one rosidl generated for dnk_msgs.
    generated = json.loads((Path(get_package_share_directory("dnk_msgs")) / "msg" / "ObstacleArray.json").read_text())
    assert by_topic["/dnk/obstacles"]["topic_metadata"]["type_description_hash"] == \
        generated["type_hashes"][0]["hash_string"]

    # As rosbag2_storage_mcap writes them: every channel's topic_type_hash, and publish time =
    # the sender's time, before the reception (log) time.
    from mcap.reader import make_reader
    with next(bag.glob("*.mcap")).open("rb") as stream:
        reader = make_reader(stream)
        summary = reader.get_summary()
        for channel in summary.channels.values():
            pkg, _, name = summary.schemas[channel.schema_id].name.split("/")
            desc = json.loads((Path(get_package_share_directory(pkg)) / "msg" / f"{name}.json").read_text())
            assert channel.metadata["topic_type_hash"] == desc["type_hashes"][0]["hash_string"], channel.topic
            assert "offered_qos_profiles" in channel.metadata
        delays = [m.log_time - m.publish_time for _, _, m in reader.iter_messages()]
    assert len(delays) == info["message_count"]
    assert all(0 < d < 5e9 for d in delays), (min(delays), max(delays))

    store = make_typestore()
    stored: dict[str, list] = {t: [] for t in sent}
    with Reader(bag) as reader:
        for conn, _, raw in reader.messages():
            stored[conn.topic].append(deserialize_message(bytes(raw), TYPES[conn.topic]))
            if conn.topic == "/dnk/obstacles":
                decoded = store.deserialize_cdr(raw, conn.msgtype)
                assert [o.id for o in decoded.obstacles][1] == "table"
    for topic, msgs in sent.items():  # every message, in order, field for field
        assert stored[topic] == msgs, topic

    # Replay only two topics at twice the speed into this process.
    got = {t: probe.collect(TYPES[t], t) for t in ("/joint_states", "/dnk/obstacles", "/goal_pose")}
    stamps: list[float] = []
    probe.node.create_subscription(JointState, "/joint_states", lambda _: stamps.append(time.monotonic()), 100)
    player = spawn("dnk_bringup.bag_replay", str(bag), "--topics", "/joint_states", "/dnk/obstacles",
                   "--rate", "2", "--wait-for-subscribers", "20")
    assert wait_until(lambda: len(got["/joint_states"]) == 40 and len(got["/dnk/obstacles"]) == 5, 30.0), \
        spawn.log(player)
    assert player.wait(10) == 0, spawn.log(player)
    assert got["/joint_states"] == sent["/joint_states"]
    assert got["/dnk/obstacles"] == sent["/dnk/obstacles"]
    assert got["/goal_pose"] == []  # filtered out
    # Original timing at rate 2: ~0.2 s between the first and last joint state (fast mode: ~ms).
    assert stamps[-1] - stamps[0] > 0.1


def test_record_refuses_existing_output(spawn, tmp_path: Path) -> None:
    proc = spawn("dnk_bringup.bag_record", "--ros-args", "-p", f"output:={tmp_path}")
    assert proc.wait(20) == 2
    assert "parameter 'output'" in spawn.log(proc) and "exists already" in spawn.log(proc)


def test_replay_names_missing_topic(spawn, tmp_path: Path) -> None:
    bag = tmp_path / "bag"
    store = make_typestore()
    with Writer(bag, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        conn = writer.add_connection("/joint_states", "sensor_msgs/msg/JointState", typestore=store)
        writer.write(conn, 1, serialize_message(JointState(name=JOINTS, position=[0.0] * 7)))
    proc = spawn("dnk_bringup.bag_replay", str(bag), "--topics", "/nope")
    assert proc.wait(20) == 2
    assert "/nope" in spawn.log(proc) and "/joint_states" in spawn.log(proc)


def test_record_pinned_type_and_best_effort_publisher(spawn, probe, tmp_path: Path) -> None:
    """'/topic:pkg/msg/Type' subscribes before any publisher; a best-effort publisher is matched
    by a best-effort subscription (a reliable one would never receive from it)."""
    bag = tmp_path / "bag"
    recorder = spawn("dnk_bringup.bag_record", "--ros-args", "-p", f"output:={bag}",
                     "-p", "topics:=['/test/pinned:std_msgs/msg/String', '/test/best_effort']")
    assert wait_until(lambda: recorder.poll() is not None or probe.node.count_subscribers("/test/pinned") > 0, 20.0)
    assert probe.node.count_subscribers("/test/pinned") > 0, spawn.log(recorder)
    pinned = probe.node.create_publisher(String, "/test/pinned", 10)
    best_effort = probe.node.create_publisher(String, "/test/best_effort", qos_profile_sensor_data)
    assert wait_until(lambda: pinned.get_subscription_count() > 0 and best_effort.get_subscription_count() > 0,
                      20.0), spawn.log(recorder)
    for k in range(5):
        pinned.publish(String(data=f"p{k}"))
        best_effort.publish(String(data=f"b{k}"))
        time.sleep(0.02)
    assert pinned.wait_for_all_acked(Duration(seconds=10.0))
    time.sleep(0.3)  # best effort has no acknowledgements
    assert spawn.interrupt(recorder) == 0, spawn.log(recorder)
    with Reader(bag) as reader:
        got = {}
        for conn, _, raw in reader.messages():
            got.setdefault(conn.topic, []).append(deserialize_message(bytes(raw), String).data)
        qos = {c.topic: c.ext.offered_qos_profiles for c in reader.connections}
    assert got["/test/pinned"] == [f"p{k}" for k in range(5)]
    assert got["/test/best_effort"] == [f"b{k}" for k in range(5)]  # same host: none lost
    assert qos["/test/best_effort"][0].reliability.name == "BEST_EFFORT"


def test_replay_of_a_cut_off_bag_publishes_what_can_be_read(recorded_bag, spawn, probe, tmp_path: Path) -> None:
    """A bag whose .mcap lost its second half (a recorder killed, a copy cut short): bag_replay
    publishes the messages before the cut, says so in one line and exits 2 (before: nothing)."""
    bag, sent = recorded_bag
    cut = tmp_path / "cut"
    shutil.copytree(bag, cut)
    mcap = next(cut.glob("*.mcap"))
    mcap.write_bytes(mcap.read_bytes()[: mcap.stat().st_size // 2])
    got = probe.collect(TYPES["/joint_states"], "/joint_states")
    # --delay: the earlier test's subscriptions satisfy --wait-for-subscribers; let this one match too
    player = spawn("dnk_bringup.bag_replay", str(cut), "--topics", "/joint_states",
                   "--wait-for-subscribers", "20", "--delay", "1.5")
    assert player.wait(30) == 2, spawn.log(player)
    log = spawn.log(player)
    assert "damaged bag" in log and "Traceback" not in log, log
    assert wait_until(lambda: len(got) > 0, 5.0), log
    first = sent["/joint_states"].index(got[0])  # discovery may cost the first message or two, never the order
    assert 0 < len(got) < len(sent["/joint_states"]) and got == sent["/joint_states"][first:first + len(got)]
