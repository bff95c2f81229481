"""The workspace's interface smoke test: dnk_msgs between two processes over real DDS.

This process publishes dnk_msgs/ObstacleArray and calls dnk_msgs/SetGoal; msgs_peer.py (a
separate process) echoes the obstacles back and serves the goals. Catches broken type
support, wrong LD_LIBRARY_PATH/PYTHONPATH in children, and mismatched interface builds.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from dnk_msgs.msg import Obstacle, ObstacleArray
from dnk_msgs.srv import SetGoal

from bringup_testing import Spawner, wait_until


@pytest.fixture(scope="module")
def peer(probe, tmp_path_factory):
    spawner = Spawner(tmp_path_factory.mktemp("peer"))
    proc = spawner.command([sys.executable, str(Path(__file__).with_name("msgs_peer.py"))], "msgs_peer")
    try:
        yield spawner, proc
    finally:
        assert spawner.interrupt(proc) == 0, spawner.log(proc)
        spawner.close()


def obstacle_array(k: int) -> ObstacleArray:
    sphere = Obstacle(id=f"ball-{k}", shape=Obstacle.SPHERE, dimensions=[0.05 + 0.01 * k])
    sphere.pose.position.x, sphere.pose.position.y, sphere.pose.position.z = 0.45, -0.1 * k, 0.3
    box = Obstacle(id="table", shape=Obstacle.BOX, dimensions=[1.2, 0.8, 0.04])
    box.pose.position.z = -0.02
    box.pose.orientation.z, box.pose.orientation.w = 0.3826834323650898, 0.9238795325112867
    msg = ObstacleArray(obstacles=[sphere, box])
    msg.header.frame_id = "base_link"
    msg.header.stamp.sec, msg.header.stamp.nanosec = 1700000000 + k, 123456789
    return msg


def test_obstacle_array_round_trip(peer, probe) -> None:
    spawner, proc = peer
    echoed = probe.collect(ObstacleArray, "/dnk/obstacles_echo")
    pub = probe.node.create_publisher(ObstacleArray, "/dnk/obstacles", 10)
    assert wait_until(lambda: pub.get_subscription_count() > 0, 20.0), spawner.log(proc)
    # Both directions are matched once a warm-up message comes back.
    deadline = time.monotonic() + 10.0
    while not echoed and time.monotonic() < deadline:
        pub.publish(ObstacleArray())
        wait_until(lambda: bool(echoed), 0.2)
    assert echoed, spawner.log(proc)
    time.sleep(0.2)
    echoed.clear()
    sent = [obstacle_array(k) for k in range(3)]
    for msg in sent:
        pub.publish(msg)
    assert wait_until(lambda: len(echoed) == len(sent), 10.0), spawner.log(proc)
    assert echoed == sent  # nested sequences, constants, poses and headers intact
    assert echoed[2].obstacles[0].shape == Obstacle.SPHERE and list(echoed[2].obstacles[1].dimensions) == [
        1.2, 0.8, 0.04]


@pytest.mark.parametrize("frame, x, tolerance, accepted, reason", [
    ("base_link", 0.5, 0.01, True, "ok"),
    ("world", 0.5, 0.01, False, "frame 'world'"),
    ("base_link", float("nan"), 0.01, False, "non-finite"),
    ("base_link", 0.5, 0.0, False, "position_tolerance"),
])
def test_set_goal_service(peer, probe, frame, x, tolerance, accepted, reason) -> None:
    client = probe.node.create_client(SetGoal, "/dnk/set_goal")
    try:
        assert client.wait_for_service(timeout_sec=20.0)
        request = SetGoal.Request(position_tolerance=tolerance)
        request.goal.header.frame_id = frame
        request.goal.pose.position.x, request.goal.pose.position.z = x, 0.3
        future = client.call_async(request)
        assert wait_until(future.done, 10.0)
        response = future.result()
        assert response.accepted is accepted
        assert reason in response.message
    finally:
        probe.node.destroy_client(client)
