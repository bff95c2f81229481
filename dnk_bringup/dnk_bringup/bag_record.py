"""bag_record: record ROS 2 topics into a rosbag2 (version 9, MCAP) bag without rosbag2.

For machines with rclpy but no rosbag2 (pip-installed ROS 2). On a full ROS 2 install use
`ros2 bag record -s mcap <topics>` instead; the bags are the same format and both tools read
each other's output. Messages are written as received (serialized CDR, no
deserialization), with their DDS reception time as log time and the sender's time as publish time,
and each channel's RIHS01 type hash, like rosbag2_storage_mcap writes them. The subscription QoS
adapts to the publishers (reliable only if every publisher is), and topics are subscribed
when a publisher appears, so the recorder can start first. SIGINT/SIGTERM drain the
queues and close the bag (MCAP footer + metadata.yaml) so nothing received is lost.

    python -m dnk_bringup.bag_record --ros-args -p output:=runs/run1 \
        -p "topics:=['/joint_states', '/dnk/obstacles']"
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import rclpy
from pydantic import BaseModel, ConfigDict, Field, field_validator
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from rosbags.interfaces import Connection, Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import StoragePlugin

from dnk_bringup.bag_write import BagWriter
from dnk_bringup.msg_types import UnknownMessageType, ensure_registered, import_message, make_typestore
from dnk_planner.ros.params import ParameterConfigError, declare_config
from dnk_planner.ros.topics import RECORD_DEFAULT



class BagRecordConfig(BaseModel):
    """Parameters of the bag_record node (node name `dnk_bag_record`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    output: str = Field(
        "", description="Bag directory to create (must not exist yet); '' = ./dnk_bag_<UTC date-time>.")
    topics: list[str] = Field(
        default_factory=lambda: list(RECORD_DEFAULT),
        description="Topics to record. '/topic' waits for a publisher and takes its type; "
        "'/topic:pkg/msg/Type' subscribes at once with that type (reliable, volatile).")
    all_topics: bool = Field(False, description="Record every topic that appears (like ros2 bag record -a).")
    discovery_period_s: float = Field(
        0.1, ge=0.01, le=10.0, description="How often the ROS graph is checked for new publishers, s.")
    queue_depth: int = Field(1000, ge=1, le=100000, description="Subscription queue depth per topic, messages.")

    @field_validator("topics")
    @classmethod
    def _topic_names(cls, topics: list[str]) -> list[str]:
        for entry in topics:
            name = entry.split(":", 1)[0]
            if not name.startswith("/") or " " in name:
                raise ValueError(f"topic '{entry}' must be an absolute name like '/joint_states' "
                                 "(optionally ':pkg/msg/Type')")
        return topics


def _qos_time(duration) -> QosTime:
    ns = duration.nanoseconds
    return QosTime(sec=ns // 1_000_000_000, nsec=ns % 1_000_000_000)


def offered_qos(profile) -> Qos:
    """rclpy QoSProfile of a publisher -> rosbags Qos (the enum values are rmw's in both)."""
    return Qos(
        history=QosHistory(int(profile.history)), depth=int(profile.depth),
        reliability=QosReliability(int(profile.reliability)), durability=QosDurability(int(profile.durability)),
        deadline=_qos_time(profile.deadline), lifespan=_qos_time(profile.lifespan),
        liveliness=QosLiveliness(int(profile.liveliness)),
        liveliness_lease_duration=_qos_time(profile.liveliness_lease_duration),
        avoid_ros_namespace_conventions=bool(profile.avoid_ros_namespace_conventions))


class BagRecorder(Node):
    """Subscribes (raw) to the configured topics and appends every message to an MCAP bag."""

    def __init__(self) -> None:
        super().__init__("dnk_bag_record")
        self.config = declare_config(self, BagRecordConfig)
        stamp = datetime.now(timezone.utc).strftime("%Y_%m_%d-%H_%M_%S")
        self.path = Path(self.config.output or f"dnk_bag_{stamp}").resolve()
        if self.path.exists():
            raise ParameterConfigError(
                f"parameter 'output': {self.path} exists already; rosbag2 bags are never appended to. "
                "Fix: choose a new directory with -p output:=<new dir>")
        self.typestore = make_typestore()
        self.writer = BagWriter(self.path, version=9, storage_plugin=StoragePlugin.MCAP)
        self.writer.open()
        self.counts: dict[str, int] = {}
        self._lock = threading.Lock()
        self._connections: dict[str, Connection] = {}
        self._subs: dict[str, object] = {}
        self._skipped: set[str] = set()
        self._wanted: dict[str, str | None] = {}
        for entry in self.config.topics:
            name, _, msgtype = entry.partition(":")
            self._wanted[name] = msgtype or None
        for name, msgtype in self._wanted.items():
            if msgtype:
                self._subscribe(name, msgtype, publishers=[])
        self._discover()
        self.create_timer(self.config.discovery_period_s, self._discover)
        self.get_logger().info(f"recording {sorted(self._wanted) or 'all topics'} into {self.path}")

    def _discover(self) -> None:
        for name, types in self.get_topic_names_and_types():
            if name in self._subs or name in self._skipped:
                continue
            if not (self.config.all_topics or name in self._wanted):
                continue
            publishers = self.get_publishers_info_by_topic(name)
            if not publishers:
                continue
            if len(types) != 1:
                self.get_logger().warning(f"topic {name} has several types {types}; not recorded")
                self._skipped.add(name)
                continue
            self._subscribe(name, types[0], publishers)

    def _subscribe(self, name: str, msgtype: str, publishers: list) -> None:
        try:
            msg_class = import_message(msgtype)
            ensure_registered(self.typestore, msgtype)
        except UnknownMessageType as exc:
            self.get_logger().error(f"topic {name} not recorded: {exc}")
            self._skipped.add(name)
            return
        profiles = [p.qos_profile for p in publishers]
        reliable = all(p.reliability == ReliabilityPolicy.RELIABLE for p in profiles)
        latched = bool(profiles) and all(p.durability == DurabilityPolicy.TRANSIENT_LOCAL for p in profiles)
        qos = QoSProfile(
            depth=self.config.queue_depth,
            reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
            durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)
        msgdef, _ = self.typestore.generate_msgdef(msgtype, ros_version=2)
        with self._lock:
            connection = self.writer.add_connection(
                name, msgtype, msgdef=msgdef, rihs01=self._type_hash(name, msgtype, publishers),
                offered_qos_profiles=[offered_qos(p) for p in profiles])
            self._connections[name] = connection
            self.counts[name] = 0
        self._subs[name] = self.create_subscription(
            msg_class, name, lambda data, info, topic=name: self._on_message(topic, data, info), qos, raw=True)
        self.get_logger().info(f"subscribed to {name} [{msgtype}]")

    def _type_hash(self, name: str, msgtype: str, publishers: list) -> str:
        """The publishers' RIHS01 type hash as rosbag2 records it; the local definition's when no
        publisher offers one. A publisher whose hash differs sends another definition of the type."""
        local = self.typestore.hash_rihs01(msgtype)
        offered = {str(p.topic_type_hash) for p in publishers} - {"INVALID"}
        if len(offered) == 1 and offered != {local}:
            self.get_logger().warning(
                f"topic {name}: the publishers' {msgtype} has type hash {next(iter(offered))}, this machine's "
                f"{local}; recorded with theirs, but the bag's schema is this machine's definition")
        return next(iter(offered)) if len(offered) == 1 else local

    def _on_message(self, topic: str, data: bytes, info: dict) -> None:
        # Log time = DDS reception time, publish time = the sender's source timestamp, as rosbag2
        # records them: a busy executor taking several queued messages at once must not squash
        # their timing.
        stamp_ns = info.get("received_timestamp") or self.get_clock().now().nanoseconds
        sent_ns = info.get("source_timestamp") or None
        with self._lock:
            if self.writer is None:
                return
            self.writer.write(self._connections[topic], stamp_ns, data, publish_time=sent_ns)
            self.counts[topic] += 1

    def close(self) -> None:
        """Write the MCAP footer and metadata.yaml; later messages are ignored."""
        with self._lock:
            writer, self.writer = self.writer, None
        if writer is not None:
            writer.close()
            _set_ros_distro(self.path / "metadata.yaml")
            total = sum(self.counts.values())
            self.get_logger().info(f"closed {self.path}: {total} messages {self.counts}")


def _set_ros_distro(metadata: Path) -> None:
    """metadata.yaml names the ROS distro as `ros2 bag record` does (rosbags writes 'rosbags')."""
    distro = os.environ.get("ROS_DISTRO") or "jazzy"
    text = metadata.read_text()
    metadata.write_text(text.replace("ros_distro: rosbags", f"ros_distro: {distro}", 1))


def main(args: list[str] | None = None) -> int:
    # Own signal handling: on SIGINT/SIGTERM the queues are drained before the bag is closed.
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        recorder = BagRecorder()
    except ParameterConfigError as exc:
        print(f"bag_record: {exc}", file=sys.stderr)
        rclpy.try_shutdown()
        return 2
    executor = SingleThreadedExecutor()
    executor.add_node(recorder)
    try:
        while not stop.is_set():
            executor.spin_once(timeout_sec=0.05)
        drain_until = time.monotonic() + 0.5
        while time.monotonic() < drain_until:
            executor.spin_once(timeout_sec=0.02)
    finally:
        recorder.close()
        executor.remove_node(recorder)
        recorder.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
