"""A Python client of the planner node's ROS API, for the demo, benchmarks, tests and scripts.

It owns its own rclpy context and spins in a background thread, so callers can stay
synchronous: start the node process, drive its lifecycle, send goals and obstacles, read the
status stream. Optionally it plays a static arm (publishes /joint_states) when no simulator
or robot is running.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped, Twist
from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import SetParametersResult
from rcl_interfaces.srv import GetParameters, SetParameters
from rclpy.duration import Duration
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.signals import SignalHandlerOptions
from rclpy.time import Time
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory
from visualization_msgs.msg import MarkerArray

from dnk_msgs.msg import Obstacle, ObstacleArray, PlannerStatus
from dnk_msgs.srv import SetGoal
from dnk_planner.ros import topics
from dnk_planner.core.kinematics import JOINT_NAMES

T = TypeVar("T")
RESEND_S = 2.0  # a query whose answer has not come is sent again after this long (PlannerClient.call)
# the primary state each transition PlannerClient.transition sends ends in
TRANSITION_GOAL = {Transition.TRANSITION_CONFIGURE: State.PRIMARY_STATE_INACTIVE,
                   Transition.TRANSITION_ACTIVATE: State.PRIMARY_STATE_ACTIVE,
                   Transition.TRANSITION_DEACTIVATE: State.PRIMARY_STATE_INACTIVE,
                   Transition.TRANSITION_CLEANUP: State.PRIMARY_STATE_UNCONFIGURED}


def sphere(name: str, center: Sequence[float], radius: float) -> Obstacle:
    """Obstacle message of a sphere (center m, radius m)."""
    o = Obstacle(id=name, shape=Obstacle.SPHERE, dimensions=[float(radius)])
    o.pose.position.x, o.pose.position.y, o.pose.position.z = (float(v) for v in center)
    o.pose.orientation.w = 1.0
    return o


def box(name: str, center: Sequence[float], size: Sequence[float],
        quat_xyzw: Sequence[float] = (0.0, 0.0, 0.0, 1.0)) -> Obstacle:
    """Obstacle message of a box (center m, full edge lengths m, orientation xyzw)."""
    o = Obstacle(id=name, shape=Obstacle.BOX, dimensions=[float(v) for v in size])
    o.pose.position.x, o.pose.position.y, o.pose.position.z = (float(v) for v in center)
    (o.pose.orientation.x, o.pose.orientation.y,
     o.pose.orientation.z, o.pose.orientation.w) = (float(v) for v in quat_xyzw)
    return o


class ChildProcess(subprocess.Popen):
    """A child in its own process group (so `interrupt` stops it like Ctrl-C) whose stdout and stderr
    go to an anonymous temporary file, not a pipe. Nobody drains a pipe while the child runs: at
    64 KiB the child's next log line blocks it for good. The 30-step teacher, which logs a deadline
    miss per decision, froze so in Table II after 16 trials and left `deactivate` unanswered.
    `log_path` keeps the output in a named file instead (tests leave it beside their artifacts)."""

    def __init__(self, args: Sequence[str], log_path: str | os.PathLike | None = None) -> None:
        self._log = tempfile.TemporaryFile() if log_path is None else open(log_path, "w+b")  # noqa: SIM115
        super().__init__(list(args), stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
                         env=dict(os.environ, PYTHONUNBUFFERED="1"))

    def output(self) -> str:
        """Everything the child wrote so far. Read with pread: the child shares the file offset, and
        moving it would make the child's next write overwrite its earlier output."""
        fd, chunks, offset = self._log.fileno(), [], 0
        while chunk := os.pread(fd, 1 << 20, offset):
            chunks.append(chunk)
            offset += len(chunk)
        return b"".join(chunks).decode(errors="replace")


def start_planner_process(params: Iterable[str] = (), params_file: str | None = None,
                          autostart: bool = False, node_name: str | None = None) -> ChildProcess:
    """`planner_node` as a child process (own process group so it can be stopped cleanly)."""
    args = [sys.executable, "-m", "dnk_planner.ros.node"] + (["--autostart"] if autostart else [])
    args.append("--ros-args")
    if params_file:
        args += ["--params-file", params_file]
    for p in params:
        args += ["-p", p]
    if node_name:
        args += ["-r", f"__node:={node_name}"]
    return ChildProcess(args)


def interrupt(proc: subprocess.Popen, timeout: float = 10.0) -> int:
    """SIGINT to the child's process group like Ctrl-C (clean rclpy shutdown, bags flushed, no
    stale DDS shared memory), SIGKILL if it has not exited after `timeout`; returns the exit code.
    The child must have been started with start_new_session=True."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode


def stop_process(proc: ChildProcess, timeout: float = 10.0) -> str:
    """`interrupt` the child and return its whole output."""
    interrupt(proc, timeout)
    return proc.output()


class BackgroundNode:
    """A node with its own rclpy context, spun by a background thread (tests, tools, clients)."""

    def __init__(self, name: str, domain_id: int | None = None) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id, signal_handler_options=SignalHandlerOptions.NO)
        self.node = rclpy.create_node(name, context=self.context)
        self._executor = SingleThreadedExecutor(context=self.context)
        self._executor.add_node(self.node)
        self._running = True
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while self._running:
            self._executor.spin_once(timeout_sec=0.05)

    def collect(self, msg_type: type, topic: str, qos: int = 100) -> list:
        """Subscribe and return the list the messages are appended to."""
        received: list = []
        self.node.create_subscription(msg_type, topic, received.append, qos)
        return received

    def close(self) -> None:
        """Stop the spin thread first, so nothing waits on a context that is shutting down."""
        self._running = False
        self._thread.join(timeout=2.0)
        self._executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


class PlannerClient(BackgroundNode):
    """Talks to one planner node (`node_name`, default dnk_planner) from a background thread."""

    def __init__(self, node_name: str = "dnk_planner", joint_names: Sequence[str] | None = None,
                 listen_joint_states: bool = True) -> None:
        super().__init__("dnk_planner_client")
        self.status: list[PlannerStatus] = []
        self.targets: list[PoseStamped] = []
        self.target_times: list[float] = []
        self.twists: list[Twist] = []
        self.trajectories: list[JointTrajectory] = []
        self.diagnostics: list[DiagnosticArray] = []
        self.markers: list[MarkerArray] = []
        n = self.node
        self.pub_joint_states = n.create_publisher(JointState, topics.JOINT_STATES, 10)
        self.pub_obstacles = n.create_publisher(ObstacleArray, topics.OBSTACLES, 10)
        self.pub_goal = n.create_publisher(PoseStamped, topics.GOAL_POSE, 10)
        n.create_subscription(PoseStamped, topics.TARGET_POSE, self._on_target, 100)
        n.create_subscription(PlannerStatus, topics.STATUS, self.status.append, 100)
        n.create_subscription(Twist, topics.TWIST, self.twists.append, 100)
        n.create_subscription(JointTrajectory, topics.JOINT_TRAJECTORY,
                              self.trajectories.append, 100)
        n.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, self.diagnostics.append, 100)
        n.create_subscription(MarkerArray, topics.CANDIDATES, self.markers.append, 10)
        self._last_joint_state: JointState | None = None
        if listen_joint_states:  # off where this process floods /joint_states itself (benchmarks)
            n.create_subscription(JointState, topics.JOINT_STATES, self._on_joint_state, 10)
        self._set_goal = n.create_client(SetGoal, topics.SET_GOAL)
        self._change_state = n.create_client(ChangeState, f"/{node_name}/change_state")
        self._get_state = n.create_client(GetState, f"/{node_name}/get_state")
        self._set_parameters = n.create_client(SetParameters, f"/{node_name}/set_parameters")
        self._get_parameters = n.create_client(GetParameters, f"/{node_name}/get_parameters")
        # Static arm: joint_state is published at 100 Hz while not None.
        self.joint_names = list(joint_names or JOINT_NAMES)
        self.joint_state: JointState | None = None
        self.stamp_offset_s: float | None = 0.0   # header.stamp = now + offset (None: a zero stamp)
        n.create_timer(0.01, self._publish_joint_state)

    # ------------------------------------------------------------------ streams
    def _on_target(self, msg: PoseStamped) -> None:
        self.targets.append(msg)
        self.target_times.append(time.monotonic())

    def _on_joint_state(self, msg: JointState) -> None:
        self._last_joint_state = msg

    def joint_positions(self) -> np.ndarray | None:
        """Latest /joint_states positions in joint_names order (None until all joints were seen)."""
        msg = self._last_joint_state
        if msg is None:
            return None
        index = dict(zip(msg.name, msg.position))
        if not all(name in index for name in self.joint_names):
            return None
        return np.array([index[name] for name in self.joint_names])

    def clear(self) -> None:
        for stream in (self.status, self.targets, self.target_times, self.twists, self.trajectories,
                       self.diagnostics, self.markers):
            stream.clear()

    def latest_status(self) -> PlannerStatus | None:
        return self.status[-1] if self.status else None

    def diagnostic_values(self) -> dict[str, str]:
        """Key/values of the latest planner diagnostic ({} before the first one)."""
        if not self.diagnostics:
            return {}
        return {kv.key: kv.value for kv in self.diagnostics[-1].status[0].values}

    # ------------------------------------------------------------------ static arm
    def hold_joints(self, q: Sequence[float] | None) -> None:
        """Publish these joint positions at 100 Hz (None stops publishing)."""
        self.joint_state = None if q is None else JointState(name=self.joint_names, position=[float(v) for v in q])

    def _publish_joint_state(self) -> None:
        msg = self.joint_state
        if msg is not None:
            offset = self.stamp_offset_s
            if offset is None:
                msg.header.stamp = Time().to_msg()
            else:
                msg.header.stamp = (self.node.get_clock().now() + Duration(nanoseconds=int(offset * 1e9))).to_msg()
            self.pub_joint_states.publish(msg)

    # ------------------------------------------------------------------ calls
    def call(self, client, request, timeout: float = 10.0, resend: bool = False):
        """The service's answer within `timeout` s. `resend` (queries whose repetition changes nothing):
        the request goes out again every RESEND_S until an answer comes. Fast DDS drops an answer when
        the server has not yet discovered this client's reply reader (the server logs "failed to send
        response (timeout)"), which a client that has just found the service meets on a loaded machine."""
        if not client.wait_for_service(timeout_sec=timeout):
            raise TimeoutError(f"service {client.srv_name} not available after {timeout} s")
        deadline = time.monotonic() + timeout
        while True:
            future = client.call_async(request)
            wait = min(RESEND_S, max(deadline - time.monotonic(), 0.0)) if resend else timeout
            try:
                self.wait_for(future.done, wait, f"an answer from {client.srv_name}")
                return future.result()
            except TimeoutError:
                client.remove_pending_request(future)
                if not resend or time.monotonic() >= deadline:
                    raise TimeoutError(f"timed out after {timeout} s waiting for an answer from {client.srv_name}")

    def transition(self, transition_id: int, timeout: float = 10.0) -> bool:
        """Lifecycle transition (lifecycle_msgs/Transition id); True when it succeeded. When its answer
        does not come, the node's state says whether it happened; if it did not (never received, or
        failed and back where it was), it is sent once more, which repeats the same outcome."""
        request = ChangeState.Request(transition=Transition(id=transition_id))
        try:
            return self.call(self._change_state, request, timeout).success
        except TimeoutError:
            if TRANSITION_GOAL.get(transition_id) == self.lifecycle_state():
                return True
            return self.call(self._change_state, request, timeout).success

    def configure_and_activate(self) -> bool:
        return self.transition(Transition.TRANSITION_CONFIGURE) and self.transition(Transition.TRANSITION_ACTIVATE)

    def lifecycle_state(self) -> int:
        return self.call(self._get_state, GetState.Request(), resend=True).current_state.id

    def set_parameters(self, **values) -> list[SetParametersResult]:
        """`ros2 param set` for each value; the node's answers (successful, reason) in order."""
        params = [Parameter(name, value=v).to_parameter_msg() for name, v in values.items()]
        return self.call(self._set_parameters, SetParameters.Request(parameters=params), resend=True).results

    def get_parameter(self, name: str):
        """The node's current value of one parameter."""
        value = self.call(self._get_parameters, GetParameters.Request(names=[name]), resend=True).values[0]
        return Parameter.from_parameter_msg(ParameterMsg(name=name, value=value)).value

    def set_goal(self, position: Sequence[float], tolerance: float = 0.01, frame: str = "base_link",
                 orientation_xyzw: Sequence[float] | None = None) -> SetGoal.Response:
        """Position goal keeping the current tool orientation, or a full pose with `orientation_xyzw`."""
        req = SetGoal.Request(position_tolerance=float(tolerance), track_orientation=orientation_xyzw is not None)
        req.goal.header.frame_id = frame
        req.goal.pose.position.x, req.goal.pose.position.y, req.goal.pose.position.z = (float(v) for v in position)
        (req.goal.pose.orientation.x, req.goal.pose.orientation.y, req.goal.pose.orientation.z,
         req.goal.pose.orientation.w) = (float(v) for v in (orientation_xyzw or (0.0, 0.0, 0.0, 1.0)))
        return self.call(self._set_goal, req)

    def publish_obstacles(self, obstacles: Iterable[Obstacle], frame: str = "base_link") -> None:
        msg = ObstacleArray(obstacles=list(obstacles))
        msg.header.frame_id = frame
        msg.header.stamp = self.node.get_clock().now().to_msg()
        self.pub_obstacles.publish(msg)

    @staticmethod
    def wait_for(predicate: Callable[[], T], timeout: float = 10.0, what: str = "a condition") -> T:
        """Poll predicate until truthy; TimeoutError naming `what` otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value is not None and (isinstance(value, np.ndarray) or value):
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
            time.sleep(0.01)

def target_position(msg: PoseStamped) -> np.ndarray:
    p = msg.pose.position
    return np.array([p.x, p.y, p.z])
