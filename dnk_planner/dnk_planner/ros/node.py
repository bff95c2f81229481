"""ROS 2 front end of the planner core: a lifecycle node that commands a Kinova Gen3.

configure -> load and validate the student (ModelContractError fails the transition with
the reason), activate -> start the control timer. A goal is accepted with its joint
configuration (IK once, keeping the current tool orientation unless the request asks for its
own). Every cycle: joint states -> `Planner.plan` on the joint-space context (the one planning
code path, whole-arm clearance) -> the plan's next row to the controller bridge (+ its Cartesian
pose on /dnk/target_pose), PlannerStatus, /diagnostics and throttled RViz markers. Nothing a
message carries may crash the loop: bad messages are dropped and counted. Every stop path
(hold, deactivate, cleanup, shutdown, error, SIGINT/SIGTERM, and a watchdog when commands stop)
sends the bridge's stop command: the real twist controller has no timeout.
"""
from __future__ import annotations

import math
import sys
import threading
import time
import traceback
from collections import Counter

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Point, PoseStamped
from rclpy.duration import Duration as RclpyDuration
from rclpy.lifecycle import Node, State, TransitionCallbackReturn
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import JointState
from visualization_msgs.msg import Marker, MarkerArray

from dnk_msgs.msg import ObstacleArray, PlannerDecision, PlannerStatus
from dnk_msgs.srv import SetGoal
from dnk_planner.ros import topics
from dnk_planner.ros.controller_bridge import ArmState, ControllerBridge, pose_stamped
from dnk_planner.core import GENERATOR_ROLES, Decision, Planner
from dnk_planner.core.arm_context import ArmContext
from dnk_planner.core.arm_geometry import arm_clearance, arm_points, arm_sweep
from dnk_planner.core.execution import PlanFollower
from dnk_planner.core.geometry import ObstacleSet, matrix_to_quat, quat_to_matrix
from dnk_planner.core.kinematics import JOINT_LOWER, JOINT_UPPER, SHOULDER_POSITION, forward_kinematics, solve_ik
from dnk_planner.core.manifest import ModelContractError, load_model
from dnk_planner.core.selectors import GeometricSelector
from dnk_planner.ros.decisions import fill_decision
from dnk_planner.ros.inputs import InputError, joint_positions, obstacle_count, obstacles_from_msg, stamp_age
from dnk_planner.ros.node_config import NodeConfig
from dnk_planner.ros.params import ParameterConfigError, declare_parameters, read_config, validate_on_set
from dnk_planner.ros.spin import init, spin_until_shutdown


# Every refused-input counter, always present in /diagnostics (0 until it happens).
FAULT_KINDS = (
    "joint_states.names", "joint_states.non_finite", "joint_states.out_of_limits", "joint_states.stamp_future",
    "joint_states.stamp_stale", "obstacles.invalid", "obstacles.frame", "obstacles.oversized", "goals.rejected",
    "goals.blocked", "goals.rate", "parameters.refused",
)
GOAL_BURST = 5  # SetGoal requests accepted back to back before max_goal_rate_hz applies
STOP_ACK_TIMEOUT_S = 0.5  # how long a stop waits for the controller to acknowledge the stop command
STALL_PERIODS = 3.0  # a tick later than this many periods after the previous one counts as a loop stall


class LatencyStats:
    """Rolling decision-latency statistics for PlannerStatus (last `window` cycles).

    A preallocated ring, and the percentile recomputed at most every `refresh` samples: the
    status goes out every cycle, and np.percentile over a 1000-entry deque cost 0.2 ms of each.
    """

    def __init__(self, window: int = 1000, refresh: int = 10) -> None:
        self._ring = np.empty(window)
        self._count = 0
        self._refresh = refresh
        self._cached = (math.nan, math.nan)
        self._cached_at = 0

    def add(self, ms: float) -> None:
        self._ring[self._count % len(self._ring)] = ms
        self._count += 1

    def _stats(self) -> tuple[float, float]:
        if self._count and (self._count - self._cached_at >= self._refresh or self._cached_at == 0):
            samples = self._ring[:min(self._count, len(self._ring))]
            self._cached = (float(samples.mean()), float(np.percentile(samples, 95)))
            self._cached_at = self._count
        return self._cached

    @property
    def mean(self) -> float:
        return self._stats()[0]

    @property
    def p95(self) -> float:
        return self._stats()[1]


class PlannerNode(Node):
    """Lifecycle node `dnk_planner` (topics and parameters: docs/interfaces.md)."""

    def __init__(self, node_name: str = "dnk_planner", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self._parameter_error: str | None = None
        self.faults: Counter[str] = Counter()   # refused inputs by kind, since start (/diagnostics)
        try:
            declare_parameters(self, NodeConfig, read_only=False)
        except ParameterConfigError as err:  # reported by configure, so the process stays up
            self._parameter_error = str(err)
        # a bad value is refused when it is set (ros2 param set), not at the next configure
        validate_on_set(self, NodeConfig, on_refused=lambda: self.faults.update(["parameters.refused"]))
        self.config: NodeConfig | None = None
        self.planner: Planner | None = None
        self.bridge: ControllerBridge | None = None
        self._arm_context: ArmContext | None = None    # the loaded model's context builder (configure)
        self.follower: PlanFollower | None = None      # the last decision's plan, followed (configure)
        self._timer = None
        self._entities: list = []
        self._reset_runtime_state()

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: State) -> TransitionCallbackReturn:
        """Any exception is logged with its reason: rclpy's lifecycle would otherwise swallow it."""
        try:
            return self._configure()
        except Exception as err:  # noqa: BLE001 - a failed configure must say why, whatever raised
            self.get_logger().error(f"configure failed: {type(err).__name__}: {err}\n{traceback.format_exc(limit=4)}")
            self.planner = None
            return TransitionCallbackReturn.FAILURE

    def _configure(self) -> TransitionCallbackReturn:
        try:
            if self._parameter_error:
                raise ParameterConfigError(self._parameter_error)
            self.config = read_config(self, NodeConfig)
        except ParameterConfigError as err:
            self.get_logger().error(f"configure failed: {err}")
            return TransitionCallbackReturn.FAILURE
        cfg = self.config
        if not cfg.model_path:
            self.get_logger().error("configure failed: parameter 'model_path' is empty; set it to the "
                                    "arm student's .onnx (its .json manifest beside it)")
            return TransitionCallbackReturn.FAILURE
        try:
            student = load_model(cfg.model_path, provider=cfg.provider, threads=cfg.threads)
            if student.manifest.task != "arm" or student.manifest.role not in GENERATOR_ROLES:
                raise ModelContractError(
                    f"{cfg.model_path}: manifest has task={student.manifest.task!r} role={student.manifest.role!r}; "
                    "the arm planner needs task='arm', role='student' (or the exported 'teacher')")
            # rows are the model's period apart, whatever the control rate: scored and sampled so
            self.plan_dt = student.manifest.row_period_s or cfg.period_s
            self._arm_context = ArmContext(student.manifest)
            self.planner = Planner(student, GeometricSelector(cfg.score_config(self.plan_dt)),
                                   cfg.planner_config(student.manifest))
            self.follower = PlanFollower(cfg.replan_every, cfg.period_s, self.plan_dt, cfg.follow_tolerance_rad)
        except (ModelContractError, ValueError, OSError) as err:
            self.get_logger().error(f"configure failed: {err}")
            self.planner = None
            return TransitionCallbackReturn.FAILURE
        manifest = student.manifest
        self.model_id = f"{manifest.model_id}:{manifest.onnx_sha256[:12]}"
        self._decision_configs = (self.planner.config.model_dump_json(), self.planner.selector.config.model_dump_json())
        self.bridge = ControllerBridge(cfg)
        self._create_entities()
        self._start_watchdog()
        self.get_logger().info(
            f"configured: model {self.model_id}, {cfg.num_candidates} candidates, H={manifest.horizon}, "
            f"{cfg.rate_hz:g} Hz, mode {cfg.controller_mode}, provider {student.provider}")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        self._reset_runtime_state()
        self.bridge.reset()
        self._timer = self.create_timer(self.config.period_s, self._control_cycle)
        self.get_logger().info("activated: control loop running")
        return super().on_activate(state)

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        self._stop_timer()
        self._send_hold("deactivated")
        return super().on_deactivate(state)

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        self.stop("cleaned up")
        self._destroy_entities()
        self.planner = None
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        self.stop("shut down")
        self._destroy_entities()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: State) -> TransitionCallbackReturn:
        self.stop("lifecycle error")
        return TransitionCallbackReturn.SUCCESS

    def stop(self, why: str) -> None:
        """Every stop path: no more cycles, no watchdog, and the stop command on the wire."""
        self._stop_timer()
        self._stop_watchdog()
        if self._entities:
            self._send_hold(why)
            # before the publisher (or the process) goes away: a reliable controller subscription has the
            # stop command, not only our send queue (bounded: a vanished subscriber must not hang a stop)
            if self.pub_command is not None:
                self.pub_command.wait_for_all_acked(RclpyDuration(seconds=STOP_ACK_TIMEOUT_S))

    # ------------------------------------------------------------------ watchdog
    def _start_watchdog(self) -> None:
        """Twist mode only: a thread (not a timer: it must run while a cycle is stuck) that sends a zero
        twist when no command went out for `twist_watchdog_s`, once per lapse."""
        self._stop_watchdog()
        if self.bridge.mode != "twist":
            return
        self._watchdog_stop = threading.Event()
        self._watchdog = threading.Thread(target=self._watch, name="dnk_twist_watchdog", daemon=True)
        self._watchdog.start()

    def _stop_watchdog(self) -> None:
        if getattr(self, "_watchdog", None) is not None:
            self._watchdog_stop.set()
            self._watchdog.join(timeout=1.0)
        self._watchdog = None

    def _watch(self) -> None:
        limit = self.config.twist_watchdog_s
        while not self._watchdog_stop.wait(min(0.02, limit / 3)):
            if time.monotonic() - self._last_command > limit and not self._stopped:
                try:
                    self.pub_command.publish(self.bridge.hold(None))
                    self.watchdog_stops += 1
                    self._stopped = True
                except Exception:  # noqa: BLE001 - context shutting down: nothing left to stop
                    return

    # ------------------------------------------------------------------ set-up helpers
    def _create_entities(self) -> None:
        self._destroy_entities()
        cfg = self.config
        sensor_qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)
        self.pub_target = self.create_publisher(PoseStamped, topics.TARGET_POSE, 10)
        self.pub_status = self.create_publisher(PlannerStatus, topics.STATUS, 10)
        self.pub_diag = self.create_publisher(DiagnosticArray, topics.DIAGNOSTICS, 10)
        self.pub_markers = self.create_publisher(MarkerArray, topics.CANDIDATES, 1)
        self.pub_command = (self.create_publisher(self.bridge.msg_type, self.bridge.topic, 10)
                            if self.bridge.topic else None)
        self.pub_decision = (self.create_publisher(PlannerDecision, topics.DECISION, 10)
                             if cfg.publish_decisions else None)
        self._entities = [
            self.pub_target, self.pub_status, self.pub_diag, self.pub_markers,
            # BEST_EFFORT accepts both reliable (joint_state_broadcaster) and best-effort publishers.
            self.create_subscription(JointState, topics.JOINT_STATES, self._on_joint_state, sensor_qos),
            self.create_subscription(PoseStamped, topics.GOAL_POSE, self._on_goal_pose, 10),
            # raw: the array's size is checked on its bytes before anything is deserialized
            self.create_subscription(ObstacleArray, topics.OBSTACLES, self._on_obstacles, 10, raw=True),
            self.create_service(SetGoal, topics.SET_GOAL, self._on_set_goal),
        ]
        self._entities += [p for p in (self.pub_command, self.pub_decision) if p is not None]
        self._joint_index: dict[str, int] = {n: i for i, n in enumerate(cfg.joint_names)}

    def _destroy_entities(self) -> None:
        for entity in self._entities:
            if hasattr(entity, "srv_type"):
                self.destroy_service(entity)
            elif hasattr(entity, "msg_type") and hasattr(entity, "publish"):
                self.destroy_publisher(entity)
            else:
                self.destroy_subscription(entity)
        self._entities = []

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self.destroy_timer(self._timer)
            self._timer = None

    def _reset_runtime_state(self) -> None:
        self.q: np.ndarray | None = None
        self.q_stamp = -math.inf                 # time.monotonic() of the last good joint state
        self._arm: ArmState | None = None         # kinematic state of the last good joint state
        self.goal: np.ndarray | None = None
        self.goal_q: np.ndarray | None = None
        self._pending_goal: PoseStamped | None = None           # a /goal_pose that came before any joint state
        self.goal_rotation: np.ndarray | None = None
        self._ee_prev: tuple[float, np.ndarray] | None = None   # (stamp, position) of the last cycle
        self.ee_speed = math.nan
        self._settled_since: float | None = None
        self._last_command = time.monotonic()                   # for the twist watchdog
        self._goal_blocked: str | None = None                   # why the goal is unreachable now
        self._stopped = True                                    # the last command was a stop command
        self.watchdog_stops = 0
        self.goal_tolerance = self.config.goal_tolerance_m if self.config else 0.01
        self._obstacles_raw: bytes | None = None  # latest /dnk/obstacles, parsed at the next cycle
        self.obstacles_all = ObstacleSet.empty()  # the latest valid set (<= max_obstacle_array)
        self.obstacles = ObstacleSet.empty()      # the max_obstacles of it planned against this cycle
        self.obstacles_left_out = 0
        self._goal_checked_against: ObstacleSet | None = None
        self._last_goal_request = time.monotonic()
        self._goal_tokens = float(GOAL_BURST)
        if self.follower is not None:
            self.follower.drop()
        self.cycles = 0
        self.deadline_misses = 0
        self.ticks_yielded = 0     # ticks given to the executor after an overrun (_control_cycle)
        self._yield_tick = False
        self.loop_stalls = 0       # ticks that came more than STALL_PERIODS periods after the previous one
        self.max_tick_gap_s = 0.0
        self._last_tick: float | None = None
        self._last_cycle_ms = 0.0  # the previous tick's own duration, status publishing included
        self.latency = LatencyStats()
        self.last_latency_ms = math.nan
        self.best_score = math.nan
        self.min_clearance = math.inf
        self.state = PlannerStatus.IDLE
        self.message = "waiting for a goal"
        self._last_markers = -math.inf
        self._last_diag = -math.inf
        if not hasattr(self, "model_id"):
            self.model_id = ""

    # ------------------------------------------------------------------ inputs
    def _refuse(self, kind: str, what: str, err: Exception) -> None:
        """Count a refused input (/diagnostics key `kind`) and say why, throttled per kind."""
        self.faults[kind] += 1
        self.get_logger().warn(f"refused {what}: {err}", throttle_duration_sec=2.0)

    def _on_joint_state(self, msg: JointState) -> None:
        cfg = self.config
        try:
            q = joint_positions(msg, self._joint_index, cfg.joint_limit_tolerance_rad)
            stamp = msg.header.stamp
            age = stamp_age(stamp.sec * 1_000_000_000 + stamp.nanosec, self.get_clock().now().nanoseconds,
                            cfg.stamp_future_tolerance_s, cfg.stale_joint_state_timeout_s)
        except InputError as err:  # the previous good state is kept (and goes stale if nothing better comes)
            self._refuse(err.kind, "/joint_states message", err)
            return
        self.q = q
        self.q_stamp = time.monotonic() - age

    def _on_goal_pose(self, msg: PoseStamped) -> None:
        """Kept until the next cycle (the latest wins), so goal spam costs at most one IK per cycle."""
        self._pending_goal = msg

    def _on_set_goal(self, request: SetGoal.Request, response: SetGoal.Response) -> SetGoal.Response:
        now, rate = time.monotonic(), self.config.max_goal_rate_hz
        # token bucket: bursts of GOAL_BURST requests pass, a sustained flood is held to `rate`
        self._goal_tokens = min(GOAL_BURST, self._goal_tokens + (now - self._last_goal_request) * rate)
        self._last_goal_request = now
        if self._goal_tokens < 1.0:
            response.accepted = False
            response.message = (f"goal requests arrive faster than max_goal_rate_hz = {self.config.max_goal_rate_hz:g} "
                                "Hz; each one solves IK. Fix: send a goal when it changes")
            self.faults["goals.rate"] += 1
        else:
            self._goal_tokens -= 1.0
            self._ingest_obstacles()  # the goal is checked against the newest obstacle set
            response.accepted, response.message = self._accept_goal(request.goal, request.position_tolerance,
                                                                    request.track_orientation)
        if not response.accepted:
            self.get_logger().warn(f"rejected SetGoal: {response.message}", throttle_duration_sec=1.0)
        return response

    def _accept_goal(self, msg: PoseStamped, tolerance: float, track_orientation: bool) -> tuple[bool, str]:
        """Validate the goal and solve its joint configuration once (the plans' target).

        Position-only goals keep the tool orientation of the moment the goal arrives; with
        `track_orientation` the goal's quaternion is the target orientation. A goal whose end
        effector, or whose whole arm at every IK solution tried, is inside an obstacle's safety
        margin is refused."""
        cfg = self.config
        p = msg.pose.position
        o = msg.pose.orientation
        goal = np.array([p.x, p.y, p.z])
        quat = np.array([o.x, o.y, o.z, o.w])
        reason = None
        if msg.header.frame_id not in ("", cfg.base_frame):
            reason = f"goal frame '{msg.header.frame_id}' is not the planning frame '{cfg.base_frame}'"
        elif not (np.all(np.isfinite(goal)) and np.all(np.isfinite(quat))):
            reason = "goal pose has non-finite values"
        elif not (0.0 < tolerance <= 0.5) or not math.isfinite(tolerance):
            reason = f"position_tolerance {tolerance} m is outside (0, 0.5]"
        elif np.linalg.norm(goal - SHOULDER_POSITION) > cfg.workspace_radius_m:
            reason = (f"goal {np.round(goal, 3).tolist()} m is {np.linalg.norm(goal - SHOULDER_POSITION):.3f} m "
                      f"from the shoulder, beyond the reachable workspace ({cfg.workspace_radius_m} m)")
        elif track_orientation and not 0.5 < np.linalg.norm(quat) < 1.5:
            reason = f"track_orientation is set but the goal quaternion {np.round(quat, 3).tolist()} is not a rotation"
        elif self.q is None:
            reason = "no joint states yet: the goal configuration is solved from the arm's current state"
        if reason is None:
            current = forward_kinematics(self.q)[:3, :3]
            rotation = quat_to_matrix(quat) if track_orientation else current
            ik = solve_ik(goal, self.q, rotation)
            if not ik.converged:
                reason = (f"goal {np.round(goal, 3).tolist()} m is not reachable with the requested orientation "
                          f"(IK residual {ik.position_error * 1e3:.1f} mm, {np.degrees(ik.rotation_error):.1f} deg)")
            else:
                goal_q, reason = self._clear_goal_configuration(goal, ik.q, rotation)
        if reason is not None:
            self.faults["goals.blocked" if "obstacle" in reason else "goals.rejected"] += 1
            return False, reason
        self.goal, self.goal_q, self.goal_rotation = goal, goal_q, rotation
        self._goal_blocked = None
        self._goal_checked_against = self.obstacles_all
        self.goal_tolerance = tolerance
        self.follower.drop()
        self._settled_since = None
        self.get_logger().info(f"goal accepted: {np.round(goal, 3).tolist()} m (tolerance {tolerance} m"
                               f"{', orientation tracked' if track_orientation else ''})")
        return True, "ok"

    def _clear_goal_configuration(self, goal: np.ndarray, goal_q: np.ndarray,
                                  rotation: np.ndarray) -> tuple[np.ndarray | None, str | None]:
        """A goal configuration whose whole arm keeps the safety margin (goal_q itself, else the closest
        of 16 IK solutions from perturbed seeds), or None and the reason naming the obstacle."""
        obstacles, margin = self.obstacles_all, self.config.safety_margin_m
        if obstacles.is_empty:
            return goal_q, None
        d_ee = obstacles.signed_distance(goal)
        if d_ee.min() < margin:
            name = obstacles.ids[int(np.argmin(d_ee))]
            return None, (f"goal {np.round(goal, 3).tolist()} m is {'inside' if d_ee.min() < 0 else 'within the safety margin of'} "
                          f"obstacle '{name}' ({d_ee.min():.3f} m from its surface, margin {margin} m). Fix: choose "
                          "another goal or update the obstacle set")
        if arm_clearance(goal_q, obstacles) >= margin:  # one configuration: microseconds
            return goal_q, None
        seeds = goal_q + np.random.default_rng(0).normal(0.0, 0.6, (16, 7))
        seeds = np.clip(seeds, JOINT_LOWER, JOINT_UPPER)
        ik = solve_ik(np.tile(goal, (16, 1)), seeds, np.tile(rotation, (16, 1, 1)))
        ok = ik.converged & (arm_clearance(ik.q, obstacles) >= margin)
        if ok.any():
            candidates = ik.q[ok]
            return candidates[np.argmin(np.linalg.norm(candidates - goal_q, axis=1))], None
        d_arm = [float(arm_clearance(goal_q, obstacles.subset([k]))) for k in range(len(obstacles))]
        name = obstacles.ids[int(np.argmin(d_arm))]
        return None, (f"goal {np.round(goal, 3).tolist()} m: the arm at every goal configuration tried (17 IK "
                      f"solutions) is within the {margin} m safety margin of obstacle '{name}'. Fix: choose another "
                      "goal or update the obstacle set")

    def _on_obstacles(self, raw: bytes) -> None:
        """Size check on the bytes; the latest array is parsed at the next cycle (bounded work per cycle)."""
        try:
            count = obstacle_count(raw)
            if count > self.config.max_obstacle_array:
                raise InputError("obstacles.oversized",
                                 f"{count} obstacles, more than max_obstacle_array = {self.config.max_obstacle_array} "
                                 "(keeping the previous set). Fix: filter the perception output, or raise the parameter")
        except InputError as err:
            self._refuse(err.kind, "/dnk/obstacles", err)
            return
        self._obstacles_raw = raw

    def _ingest_obstacles(self) -> None:
        raw, self._obstacles_raw = self._obstacles_raw, None
        if raw is None:
            return
        try:
            msg = deserialize_message(raw, ObstacleArray)
            if msg.header.frame_id != self.config.base_frame:
                raise InputError("obstacles.frame", f"frame '{msg.header.frame_id}' is not the planning frame "
                                 f"'{self.config.base_frame}' (no TF lookup here: publish obstacles in it)")
            self.obstacles_all = obstacles_from_msg(msg)
        except InputError as err:
            self._refuse(err.kind, "/dnk/obstacles (keeping the previous set)", err)
        except ValueError as err:
            self._refuse("obstacles.invalid", "/dnk/obstacles (keeping the previous set)", err)

    def _ingest_inputs(self, q: np.ndarray | None) -> None:
        """Once per cycle: the latest obstacle array and /goal_pose, then the obstacles planned against."""
        self._ingest_obstacles()
        if self._pending_goal is not None and q is not None:
            pending, self._pending_goal = self._pending_goal, None
            ok, why = self._accept_goal(pending, self.config.goal_tolerance_m, track_orientation=False)
            if not ok:
                self.get_logger().warn(f"rejected /goal_pose: {why}", throttle_duration_sec=1.0)
        if self.goal is not None and self._goal_checked_against is not self.obstacles_all:
            self._recheck_goal()
        self.obstacles, self.obstacles_left_out = self.obstacles_all, 0
        if len(self.obstacles_all) > self.config.max_obstacles and q is not None:
            points = np.concatenate([arm_points(q), self.goal[None] if self.goal is not None else np.empty((0, 3))])
            self.obstacles, self.obstacles_left_out = self.obstacles_all.nearest(points, self.config.max_obstacles)

    def _recheck_goal(self) -> None:
        """A new obstacle set may block the goal: find a clear goal configuration, or report GOAL_UNREACHABLE."""
        self._goal_checked_against = self.obstacles_all
        goal_q, reason = self._clear_goal_configuration(self.goal, self.goal_q, self.goal_rotation)
        self._goal_blocked = reason
        if reason is None:
            self.goal_q = goal_q
        else:
            self.faults["goals.blocked"] += 1

    # ------------------------------------------------------------------ control loop
    def _control_cycle(self) -> None:
        """One control step; any unexpected error becomes FAULT in the status, never a crash.

        After a cycle that overran the period, one tick is yielded: rclpy's executor runs a due timer
        before the subscriptions, so the joint states that came during the overrun are still queued
        and this tick would judge the arm by a state one overrun old (and hold it as stale)."""
        t0 = time.monotonic()
        self._check_tick_gap(t0)
        if self._yield_tick:
            self._yield_tick = False
            self.ticks_yielded += 1
            self._last_cycle_ms = 0.0
            return
        self.cycles += 1
        try:
            self._step()
        except Exception as err:  # noqa: BLE001 - the loop must survive anything a cycle raises
            self.state, self.message = PlannerStatus.FAULT, f"cycle error: {type(err).__name__}: {err}"
            self.get_logger().error(self.message, throttle_duration_sec=1.0)
        try:
            self._publish_status()
            if self.planner is not None:
                self.planner.prefetch()  # next cycle's prior noise, drawn after this cycle's outputs are out
        except Exception as err:  # noqa: BLE001 - e.g. the context going down under a SIGINT
            self.get_logger().error(f"status error: {type(err).__name__}: {err}", throttle_duration_sec=1.0)
        self._last_cycle_ms = (time.monotonic() - t0) * 1e3
        self._yield_tick = self.config is not None and self._last_cycle_ms > self.config.period_s * 1e3

    def _check_tick_gap(self, now: float) -> None:
        """Count and explain a stalled loop: how long the previous tick itself took (its cycle and status
        publishing) against the whole gap, the rest being outside it (another callback, the middleware,
        the OS). A stall is what a user needs to see: the arm got no new command for that long."""
        last, self._last_tick = self._last_tick, now
        if last is None or self.config is None:
            return
        gap = now - last
        self.max_tick_gap_s = max(self.max_tick_gap_s, gap)
        if gap > STALL_PERIODS * self.config.period_s:
            self.loop_stalls += 1
            self.get_logger().warn(
                f"control loop stalled: {gap:.3f} s between ticks (period {self.config.period_s:g} s); the previous "
                f"tick took {self._last_cycle_ms:.1f} ms, the rest was spent outside it (other callbacks, the "
                "middleware or the OS)", throttle_duration_sec=1.0)

    def _step(self) -> None:
        cfg = self.config
        t_start = time.perf_counter()
        # the decision's stamp is the time its inputs were read; taken only when decisions are published
        self._cycle_stamp = self.get_clock().now().to_msg() if self.pub_decision is not None else None
        self.last_latency_ms = math.nan  # until this cycle decides
        self._ingest_inputs(self.q)
        self._ingest_ms = (time.perf_counter() - t_start) * 1e3
        if self.q is None or time.monotonic() - self.q_stamp > cfg.stale_joint_state_timeout_s:
            age = time.monotonic() - self.q_stamp
            self._send_hold("no joint states yet" if self.q is None else
                            f"joint states stale ({age:.2f} s > {cfg.stale_joint_state_timeout_s} s)")
            return
        q = self.q
        pose = forward_kinematics(q)
        arm = ArmState(q=q, ee_position=pose[:3, 3].copy(), ee_rotation=pose[:3, :3].copy())
        self._arm = arm
        self._update_speed(arm.ee_position)
        if self.goal is None:
            self.state, self.message = PlannerStatus.IDLE, "waiting for a goal"
            return
        if self._settled(arm):
            self._send_hold("goal reached: end effector settled within the goal tolerance", PlannerStatus.GOAL_REACHED)
            return
        if np.linalg.norm(self.goal - arm.ee_position) <= self.goal_tolerance:
            # Arrived, still moving: stop here and settle. A plan from inside the tolerance can only
            # wander (the student's plans end within ~1 cm of a goal, not on it): in Table II the arm
            # passed within 3-8 mm and drifted out again in 8 of 50 trials.
            self._send_hold("inside the goal tolerance: stopping to settle", PlannerStatus.ACTIVE)
            return
        if self._goal_blocked is not None:
            self._send_hold(self._goal_blocked, PlannerStatus.GOAL_UNREACHABLE)
            return

        # between decisions, the committed plan's next row while the arm follows it and what is left of it
        # keeps the margin from the obstacles as they are now (a new or moved obstacle makes this cycle decide)
        if not self.follower.due(q) and self._clearance(self.follower.remaining()) >= cfg.safety_margin_m:
            self.state, self.message = PlannerStatus.ACTIVE, "following the last decision's plan"
            self._command(self.follower.advance(), arm)
            return
        ctx = self._arm_context.build(q, self.goal, self.goal_q, self.obstacles)
        decision = self.planner.plan(ctx)
        ms = decision.timing["total_ms"]
        self.last_latency_ms = ms
        self.latency.add(ms)
        self.best_score = float(decision.scores[decision.best_index]) if decision.feasible else -math.inf
        self._act_on(decision, arm, t_start)
        # after the command: debugging output never delays the arm
        if self.pub_decision is not None:
            msg = fill_decision(PlannerDecision(), decision, ctx, self.cycles, self.planner.manifest.onnx_sha256,
                                self.model_id, *self._decision_configs)
            msg.header.stamp, msg.header.frame_id = self._cycle_stamp, self.config.base_frame
            self.pub_decision.publish(msg)
        self._maybe_publish_markers(decision)

    def _act_on(self, decision: Decision, arm: ArmState, t_start: float) -> None:
        """The decision to the controller. A late one is counted and still used: the arm stood still while
        it was computed (a one-point trajectory ends after one period, the twist watchdog stops a twist),
        so the state it was decided from is still the arm's, and any older plan was decided earlier."""
        cfg = self.config
        cycle_ms = (time.perf_counter() - t_start) * 1e3  # everything in the cycle counts, not only the decision
        late = cycle_ms > cfg.decision_deadline_ms
        if late:
            self.deadline_misses += 1
            split = ", ".join(f"{k[:-3]} {v:.2f}" for k, v in decision.timing.items())
            self.get_logger().warn(f"deadline miss: cycle {cycle_ms:.2f} ms > {cfg.decision_deadline_ms:.2f} ms "
                                   f"(inputs {self._ingest_ms:.2f}, {split} ms)", throttle_duration_sec=1.0)
        if not decision.feasible:
            self._send_hold(f"all {len(decision.scores)} candidates violate the {cfg.safety_margin_m} m safety "
                            "margin or the joint limits")
            return
        self.state = PlannerStatus.ACTIVE
        self.message = (f"deadline miss ({cycle_ms:.2f} ms > {cfg.decision_deadline_ms:.2f} ms), plan followed"
                        if late else "tracking the best candidate")
        # one control period along the plan: row 1 (the action) when the rate is the model's
        self._command(self.follower.commit(decision.trajectory[:, :7]), arm)
        self.min_clearance = self._clearance(self.follower.plan)

    def _update_speed(self, ee: np.ndarray) -> None:
        """End-effector speed from the measured joints of successive cycles (m/s)."""
        now = self.q_stamp
        if self._ee_prev is not None and now > self._ee_prev[0]:
            self.ee_speed = float(np.linalg.norm(ee - self._ee_prev[1]) / (now - self._ee_prev[0]))
        if self._ee_prev is None or now > self._ee_prev[0]:
            self._ee_prev = (now, ee)

    def _settled(self, arm: ArmState) -> bool:
        """Inside the tolerance and at rest for settle_time_s: reaching means stopped there, not passing by."""
        cfg = self.config
        inside = np.linalg.norm(self.goal - arm.ee_position) <= self.goal_tolerance
        if not (inside and self.ee_speed < cfg.settle_speed_mps):
            self._settled_since = None
            return False
        now = time.monotonic()
        self._settled_since = self._settled_since or now
        return now - self._settled_since >= cfg.settle_time_s

    def _clearance(self, plan_q: np.ndarray) -> float:
        """Whole-arm clearance of a joint plan (m): closest link sphere to any obstacle surface."""
        if self.obstacles.is_empty:
            return math.inf
        return float(arm_clearance(plan_q, self.obstacles).min())

    def _command(self, q_next: np.ndarray, arm: ArmState) -> None:
        """The plan's next row: its pose on /dnk/target_pose and the bridge's command."""
        pose = forward_kinematics(q_next)
        stamp = self.get_clock().now().to_msg()
        self.pub_target.publish(pose_stamped(pose[:3, 3], matrix_to_quat(pose[:3, :3]), self.config.base_frame, stamp))
        if self.pub_command is not None:
            self.pub_command.publish(self.bridge.command(q_next, arm))
        self._last_command, self._stopped = time.monotonic(), False

    def _send_hold(self, why: str, state: int = PlannerStatus.HOLDING) -> None:
        """Stop where the arm is: target = the measured pose, plus the bridge's stop command (a zero
        twist even before the first joint state)."""
        self.state, self.message = state, why
        self.follower.drop()
        arm = self._arm
        if arm is not None:
            self.pub_target.publish(pose_stamped(arm.ee_position, matrix_to_quat(arm.ee_rotation),
                                                 self.config.base_frame, self.get_clock().now().to_msg()))
        command = self.bridge.hold(arm) if self.pub_command is not None else None
        if command is not None:
            self.pub_command.publish(command)
        self._last_command, self._stopped = time.monotonic(), True

    # ------------------------------------------------------------------ outputs
    def _publish_status(self) -> None:
        if not hasattr(self, "pub_status"):
            return
        msg = PlannerStatus()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self.config.base_frame
        msg.state = self.state
        arm = self._arm
        msg.distance_to_goal = (float(np.linalg.norm(self.goal - arm.ee_position))
                                if self.goal is not None and arm is not None else math.nan)
        msg.min_clearance = self.min_clearance
        msg.last_latency_ms = self.last_latency_ms
        msg.mean_latency_ms = self.latency.mean
        msg.p95_latency_ms = self.latency.p95
        msg.deadline_misses = self.deadline_misses
        msg.cycles = self.cycles
        msg.candidates = self.config.num_candidates
        msg.best_score = self.best_score
        msg.model_id = self.model_id
        msg.message = self.message
        self.pub_status.publish(msg)
        now = time.monotonic()
        if now - self._last_diag >= 1.0:
            self._last_diag = now
            self.pub_diag.publish(self._diagnostics(msg))

    def _diagnostics(self, status: PlannerStatus) -> DiagnosticArray:
        level = {PlannerStatus.FAULT: DiagnosticStatus.ERROR,
                 PlannerStatus.HOLDING: DiagnosticStatus.WARN}.get(status.state, DiagnosticStatus.OK)
        if status.deadline_misses and level == DiagnosticStatus.OK:
            level = DiagnosticStatus.WARN
        f = self.faults
        values = {
            "state": str(status.state), "cycles": str(status.cycles),
            "deadline_misses": str(status.deadline_misses),
            "mean_latency_ms": f"{status.mean_latency_ms:.3f}", "p95_latency_ms": f"{status.p95_latency_ms:.3f}",
            "dropped_joint_states": str(sum(v for k, v in f.items() if k.startswith("joint_states."))),
            "rejected_obstacle_arrays": str(sum(v for k, v in f.items() if k.startswith("obstacles."))),
            "rejected_goals": str(sum(v for k, v in f.items() if k.startswith("goals."))),
            **{k: str(f[k]) for k in FAULT_KINDS},
            "obstacles_planned": str(len(self.obstacles)), "obstacles_left_out": str(self.obstacles_left_out),
            "watchdog_zero_twists": str(self.watchdog_stops), "ticks_yielded_after_overrun": str(self.ticks_yielded),
            "loop_stalls": str(self.loop_stalls), "max_tick_gap_ms": f"{self.max_tick_gap_s * 1e3:.1f}",
            "model_id": self.model_id,
        }
        diag = DiagnosticStatus(level=level, name="dnk_planner: control loop", hardware_id="kinova_gen3",
                                message=status.message,
                                values=[KeyValue(key=k, value=v) for k, v in values.items()])
        return DiagnosticArray(header=status.header, status=[diag])

    def _maybe_publish_markers(self, decision) -> None:
        rate = self.config.marker_rate_hz
        now = time.monotonic()
        if rate <= 0.0 or now - self._last_markers < 1.0 / rate:
            return
        self._last_markers = now
        self.pub_markers.publish(candidate_markers(decision, self.config.base_frame,
                                                   self.get_clock().now().to_msg()))


MARKER_POINTS = 17  # per candidate path: enough for RViz, and a MarkerArray of 64 builds in a few ms


def candidate_markers(decision: Decision, frame: str, stamp) -> MarkerArray:
    """LINE_STRIP of each candidate's end-effector path (grey; the chosen one green, rejected ones red) for RViz.

    Paths are drawn through MARKER_POINTS of their waypoints (first and last included), and the
    messages are built without rclpy's per-field checks (the values are floats by construction):
    the full 64 x 32 with checks took 14 ms here, a stall of several control periods at 200 Hz.
    """
    markers = MarkerArray()
    clear = Marker(action=Marker.DELETEALL)
    clear.header.frame_id = frame
    markers.markers.append(clear)
    n, h = decision.candidates.shape[:2]
    rows = np.unique(np.linspace(0, h - 1, min(h, MARKER_POINTS)).round().astype(int))
    q = decision.candidates[:, rows, :7]
    ee = arm_sweep(q)[1].transpose(1, 2, 0).tolist()                                  # (N, R, 3)
    rejected = ~np.isfinite(decision.scores)
    for i in range(n):
        m = Marker(ns="dnk_candidates", id=i, type=Marker.LINE_STRIP, action=Marker.ADD, check_fields=False)
        m.header.frame_id, m.header.stamp = frame, stamp
        m.pose.orientation.w = 1.0
        best = i == decision.best_index and decision.feasible
        m.scale.x = 0.006 if best else 0.002
        m.color.r, m.color.g, m.color.b, m.color.a = ((0.1, 0.9, 0.1, 1.0) if best else
                                                      (0.9, 0.1, 0.1, 0.4) if rejected[i] else (0.6, 0.6, 0.6, 0.4))
        m.points = [Point(x=x, y=y, z=z, check_fields=False) for x, y, z in ee[i]]
        markers.markers.append(m)
    return markers


def main(args: list[str] | None = None) -> None:
    """Console script `planner_node`; `--autostart` configures and activates at start-up."""
    argv = list(sys.argv if args is None else args)
    autostart = "--autostart" in argv
    argv = [a for a in argv if a != "--autostart"]
    init(argv)
    node = PlannerNode()
    if autostart:
        if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            node.get_logger().error("autostart: configure failed; staying unconfigured (fix the error above)")
        else:
            node.trigger_activate()
    spin_until_shutdown(node, on_stop=lambda: node.stop("process stopping (SIGINT/SIGTERM)"))


if __name__ == "__main__":
    main()
