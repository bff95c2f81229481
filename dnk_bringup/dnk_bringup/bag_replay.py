"""bag_replay: publish a rosbag2 bag's messages back onto ROS 2 topics without rosbag2.

For machines with rclpy but no rosbag2. On a full ROS 2 install use
`ros2 bag play <bag> [--rate R] [--topics ...]` instead. Reads MCAP or sqlite3 bags (rosbag2
version <= 9, e.g. from bag_record or `ros2 bag record -s mcap`) with rosbags and publishes the
stored CDR bytes unchanged, with the original inter-message timing scaled by --rate, or as
fast as possible with --fast. A damaged bag (cut off, never closed, no metadata.yaml) replays the
messages that can be read, says what was wrong in one line and exits 2.

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
import rclpy.logging
from builtin_interfaces.msg import Time as TimeMsg
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from rclpy.utilities import remove_ros_args
from rosbags.interfaces import QosDurability
from rosbags.rosbag2 import ReaderError
from rosgraph_msgs.msg import Clock

from dnk_bringup.bag_read import open_reader, read_bag
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


def select_topics(available: dict[str, set[str]], topics: list[str] | None, log) -> dict[str, str]:
    """topic -> its one type, for the replayed topics (ValueError names what cannot be replayed)."""
    if topics is not None:
        missing = sorted(set(topics) - set(available))
        if len(missing) == len(set(topics)):
            raise ValueError(f"--topics: none of {missing} is in the bag; it has {sorted(available)}")
        if missing:  # like `ros2 bag play --topics`: a topic the run never saw is skipped
            log.warning(f"--topics: {missing} not in the bag; replaying the others")
    chosen = {}
    for topic, types in sorted(available.items()):
        if topics is not None and topic not in topics:
            continue
        if len(types) != 1:
            raise ValueError(f"topic {topic} has several types in the bag ({sorted(types)}); "
                             "replay it with --topics excluding it")
        chosen[topic] = next(iter(types))
    return chosen


class BagPlayer(Node):
    """One publisher per replayed topic; `play` publishes (topic, stamp, CDR) in the bag's order."""

    def __init__(self, types: dict[str, str], qos: dict[str, QoSProfile], clock: bool = False) -> None:
        super().__init__("dnk_bag_replay")
        self.clock = self.create_publisher(Clock, "/clock", 10) if clock else None
        default = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
        self.publishers_by_topic = {topic: self.create_publisher(import_message(msgtype), topic, qos.get(topic, default))
                                    for topic, msgtype in types.items()}
        self.counts: Counter[str] = Counter()

    def wait_for_subscribers(self, timeout_s: float, stop: threading.Event) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not stop.is_set():
            if all(p.get_subscription_count() > 0 for p in self.publishers_by_topic.values()):
                return True
            time.sleep(0.02)
        return False

    def play(self, messages, rate: float | None, stop: threading.Event) -> None:
        """Publish (topic, stamp ns, data) once through; rate None = as fast as possible."""
        start_wall = time.monotonic()
        first_stamp = None
        for topic, stamp_ns, data in messages:
            if stop.is_set():
                return
            if topic not in self.publishers_by_topic:
                continue
            if rate is not None:
                first_stamp = stamp_ns if first_stamp is None else first_stamp
                due = start_wall + (stamp_ns - first_stamp) / 1e9 / rate
                while not stop.is_set() and (wait := due - time.monotonic()) > 0:
                    time.sleep(min(wait, 0.05))
            if self.clock is not None:
                self.clock.publish(Clock(clock=TimeMsg(sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000)))
            self.publishers_by_topic[topic].publish(bytes(data))
            self.counts[topic] += 1

    def wait_acked(self, timeout_s: float = 2.0) -> None:
        """Give reliable subscribers time to acknowledge the tail before the publishers go away."""
        for publisher in self.publishers_by_topic.values():
            publisher.wait_for_all_acked(Duration(seconds=timeout_s))


class _Source:
    """The bag's messages: streamed by rosbags with the recorded QoS, or, for a damaged bag, what
    `bag_read` salvages (default QoS; `error` says what was wrong)."""

    def __init__(self, bag: Path) -> None:
        self.bag, self.error, self.salvaged = bag, None, None
        self.reader, _ = open_reader(bag)
        if self.reader is None:
            messages, scan = read_bag(bag)
            if not messages:
                raise ValueError(scan.error or "no messages") from None
            self.salvaged, self.error = messages, scan.error
        conns = self.reader.connections if self.reader else []
        self.available: dict[str, set[str]] = {}
        for topic, msgtype in ([(c.topic, c.msgtype) for c in conns]
                               or [(m.topic, m.msgtype) for m in self.salvaged]):
            self.available.setdefault(topic, set()).add(msgtype)
        self.qos = {t: _qos_for([c for c in conns if c.topic == t]) for t in self.available} if conns else {}
        self.count = self.reader.message_count if self.reader else len(self.salvaged)

    def messages(self):
        if self.reader is None:
            return ((m.topic, m.timestamp, m.data) for m in self.salvaged)
        return ((c.topic, t, d) for c, t, d in self.reader.messages())

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv if argv is None else argv
    args = parse_args(remove_ros_args(argv)[1:])
    rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    player = source = None
    try:
        source = _Source(args.bag)
        log = rclpy.logging.get_logger("dnk_bag_replay")
        types = select_topics(source.available, args.topics, log)
        player = BagPlayer(types, source.qos, clock=args.clock)
        if source.error:
            print(f"bag_replay: {source.error}; replaying the {source.count} messages that could be read",
                  file=sys.stderr)
        if args.wait_for_subscribers and not player.wait_for_subscribers(args.wait_for_subscribers, stop):
            log.warning(f"not every topic has a subscriber after {args.wait_for_subscribers} s; playing anyway")
        if stop.wait(args.delay):
            return 0
        log.info(f"playing {args.bag} ({source.count} messages, "
                 f"{'fast' if args.fast else f'rate {args.rate}'}) on {sorted(player.publishers_by_topic)}")
        while not stop.is_set():
            player.play(source.messages(), None if args.fast else args.rate, stop)
            if not args.loop:
                break
        player.wait_acked()
        log.info(f"published {sum(player.counts.values())} messages {dict(player.counts)}")
    except (ReaderError, ValueError, UnknownMessageType, FileNotFoundError) as exc:
        print(f"bag_replay: {args.bag}: {exc}", file=sys.stderr)
        return 2
    finally:
        if source is not None:
            source.close()
        if player is not None:
            player.destroy_node()
        rclpy.try_shutdown()
    return 2 if source is not None and source.error else 0


if __name__ == "__main__":
    sys.exit(main())
