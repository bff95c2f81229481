"""bag_replay: publish a rosbag2 bag's messages back onto ROS 2 topics without rosbag2.

For machines with rclpy but no rosbag2. On a full ROS 2 install use
`ros2 bag play <bag> [--rate R] [--topics ...]` instead. Reads MCAP or sqlite3 bags (rosbag2
version <= 9, e.g. from bag_record or `ros2 bag record -s mcap`) with rosbags and publishes the
stored CDR bytes unchanged, with the original inter-message timing scaled by --rate, or as
fast as possible with --fast.

    python -m dnk_bringup.bag_replay runs/run1 --topics /joint_states /dnk/obstacles --rate 2
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import rclpy
from builtin_interfaces.msg import Time as TimeMsg
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from rclpy.utilities import remove_ros_args
from rosbags.interfaces import QosDurability
from rosbags.rosbag2 import Reader, ReaderError
from rosgraph_msgs.msg import Clock

from dnk_bringup.msg_types import UnknownMessageType, import_message


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bag_replay", description=__doc__.split("\n\n")[0])
    parser.add_argument("bag", type=Path, help="bag directory (with metadata.yaml)")
    timing = parser.add_mutually_exclusive_group()
    timing.add_argument("--rate", type=float, default=1.0,
                        help="time scale of the original timing (2 = twice as fast); > 0")
    timing.add_argument("--fast", action="store_true", help="publish as fast as possible, ignoring timing")
    parser.add_argument("--topics", nargs="+", default=None, help="replay only these topics")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds to wait before the first message")
    parser.add_argument("--wait-for-subscribers", type=float, default=0.0, metavar="S",
                        help="wait up to S seconds until every replayed topic has a subscriber")
    parser.add_argument("--loop", action="store_true", help="start over at the end until interrupted")
    parser.add_argument("--clock", action="store_true",
                        help="publish /clock with the bag's time (like `ros2 bag play --clock`): nodes run with "
                             "use_sim_time:=true then judge the recorded header stamps against the bag's time")
    args = parser.parse_args(argv)
    if not args.rate > 0.0:
        parser.error(f"--rate must be > 0 (got {args.rate}); use --fast for no timing")
    if args.delay < 0.0 or args.wait_for_subscribers < 0.0:
        parser.error("--delay and --wait-for-subscribers must be >= 0 seconds")
    return args


def _qos_for(connections) -> QoSProfile:
    """Reliable, and transient-local when the recorded publishers were (latched topics)."""
    profiles = [p for c in connections for p in c.ext.offered_qos_profiles]
    latched = bool(profiles) and all(p.durability == QosDurability.TRANSIENT_LOCAL for p in profiles)
    return QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)


class BagPlayer(Node):
    """One publisher per replayed topic; `play` walks the bag in timestamp order."""

    def __init__(self, reader: Reader, topics: list[str] | None, clock: bool = False) -> None:
        super().__init__("dnk_bag_replay")
        self.clock = self.create_publisher(Clock, "/clock", 10) if clock else None
        available = {c.topic for c in reader.connections}
        if topics is not None:
            missing = sorted(set(topics) - available)
            if len(missing) == len(set(topics)):
                raise ValueError(f"--topics: none of {missing} is in the bag; it has {sorted(available)}")
            if missing:  # like `ros2 bag play --topics`: a topic the run never saw is skipped
                self.get_logger().warning(f"--topics: {missing} not in the bag; replaying the others")
        self.connections = [c for c in reader.connections if topics is None or c.topic in topics]
        self.publishers_by_topic = {}
        for topic in sorted({c.topic for c in self.connections}):
            conns = [c for c in self.connections if c.topic == topic]
            types = {c.msgtype for c in conns}
            if len(types) != 1:
                raise ValueError(f"topic {topic} has several types in the bag ({sorted(types)}); "
                                 "replay it with --topics excluding it")
            self.publishers_by_topic[topic] = self.create_publisher(
                import_message(types.pop()), topic, _qos_for(conns))
        self.counts: Counter[str] = Counter()

    def wait_for_subscribers(self, timeout_s: float, stop: threading.Event) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not stop.is_set():
            if all(p.get_subscription_count() > 0 for p in self.publishers_by_topic.values()):
                return True
            time.sleep(0.02)
        return False

    def play(self, reader: Reader, rate: float | None, stop: threading.Event) -> None:
        """Publish once through the bag; rate None = as fast as possible."""
        start_wall = time.monotonic()
        first_stamp = None
        for connection, stamp_ns, data in reader.messages(connections=self.connections):
            if stop.is_set():
                return
            if rate is not None:
                first_stamp = stamp_ns if first_stamp is None else first_stamp
                due = start_wall + (stamp_ns - first_stamp) / 1e9 / rate
                while not stop.is_set() and (wait := due - time.monotonic()) > 0:
                    time.sleep(min(wait, 0.05))
            if self.clock is not None:
                self.clock.publish(Clock(clock=TimeMsg(sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000)))
            self.publishers_by_topic[connection.topic].publish(bytes(data))
            self.counts[connection.topic] += 1

    def wait_acked(self, timeout_s: float = 2.0) -> None:
        """Give reliable subscribers time to acknowledge the tail before the publishers go away."""
        for publisher in self.publishers_by_topic.values():
            publisher.wait_for_all_acked(Duration(seconds=timeout_s))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv if argv is None else argv
    args = parse_args(remove_ros_args(argv)[1:])
    rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    player = None
    try:
        with Reader(args.bag) as reader:
            player = BagPlayer(reader, args.topics, clock=args.clock)
            log = player.get_logger()
            if args.wait_for_subscribers and not player.wait_for_subscribers(args.wait_for_subscribers, stop):
                log.warning(f"not every topic has a subscriber after {args.wait_for_subscribers} s; playing anyway")
            if stop.wait(args.delay):
                return 0
            log.info(f"playing {args.bag} ({reader.message_count} messages, "
                     f"{'fast' if args.fast else f'rate {args.rate}'}) on {sorted(player.publishers_by_topic)}")
            while not stop.is_set():
                player.play(reader, None if args.fast else args.rate, stop)
                if not args.loop:
                    break
            player.wait_acked()
            log.info(f"published {sum(player.counts.values())} messages {dict(player.counts)}")
    except (ReaderError, ValueError, UnknownMessageType, FileNotFoundError) as exc:
        print(f"bag_replay: {args.bag}: {exc}", file=sys.stderr)
        return 2
    finally:
        if player is not None:
            player.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
