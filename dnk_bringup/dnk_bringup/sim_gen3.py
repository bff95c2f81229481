"""sim_gen3: a simulated Kinova Gen3 speaking ros2_kortex's topics, for machines without one.

Publishes sensor_msgs/JointState on /joint_states (like joint_state_broadcaster) and accepts
what the planner sends to ros2_kortex: trajectory_msgs/JointTrajectory on
/joint_trajectory_controller/joint_trajectory, geometry_msgs/Twist on
/twist_controller/commands, and a geometry_msgs/PoseStamped Cartesian target (default
/dnk/target_pose). The controllers (joint trajectory interpolation within the joint limits, the
twist controller without timeout, a pose approach) are dnk_bringup.arm_sim; their joint reference is
tracked by MuJoCo servos at 1 kHz (dnk_bringup.gen3_mujoco: Kinova's URDF + meshes when given,
fitted spheres otherwise), with /dnk/obstacles as MuJoCo geoms and the arm's contacts and
smallest link distance on /sim_gen3/contacts (dnk_msgs/ArmContacts). Malformed commands (NaN,
wrong joint names, wrong frame) are dropped with a throttled warning; the node keeps publishing.

    python -m dnk_bringup.sim_gen3 --ros-args -p rate_hz:=100.0 -p joint_prefix:=left_
    python -m dnk_bringup.sim_gen3 --ros-args --params-file config/sim_gen3.yaml
"""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np
import rclpy
from geometry_msgs.msg import PoseStamped, Twist
from rclpy.node import Node
from rclpy.time import Time
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory

from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

from dnk_bringup.arm_sim import ArmSim
from dnk_bringup.gen3_mujoco import TIMESTEP_S, Gen3Mujoco
from dnk_msgs.msg import ArmContacts, ObstacleArray
from dnk_planner.ros.controller_bridge import DEG_PER_RAD
from dnk_planner.ros.inputs import obstacles_from_msg
from dnk_planner.ros.params import ParameterConfigError, declare_config
from dnk_planner.ros.spin import init, spin_until_shutdown
from dnk_bringup.paths import config_file
from dnk_planner.core.kinematics import unwrap_near, wrap_to_pi
from dnk_bringup.sim_gen3_config import SimGen3Config, load_joint_limits
from dnk_planner.ros.topics import JOINT_STATES, JOINT_TRAJECTORY, OBSTACLES, SIM_CONTACTS, TWIST


def _finite(values) -> bool:
    return all(math.isfinite(v) for v in values)


def find_description(path: str) -> Path | None:
    """The folder holding gen3.urdf + meshes: `path`, else an installed kortex_description, else None."""
    if path:
        folder = Path(path)
        if not (folder / "gen3.urdf").is_file():
            raise ParameterConfigError(f"parameter 'description_path': {folder}/gen3.urdf not found; pass the folder "
                                       "holding Kinova's gen3.urdf and meshes/, or '' for the built-in model")
        return folder
    try:
        share = Path(get_package_share_directory("kortex_description")) / "robots"
    except PackageNotFoundError:
        return None
    return share if (share / "gen3.urdf").is_file() else None


class SimGen3(Node):
    """ROS front end of the simulated Gen3: the controllers' reference (ArmSim) tracked by MuJoCo servos
    at 1 kHz; commands in, joint states out at `rate_hz`, contacts out at `contacts_rate_hz`."""

    def __init__(self) -> None:
        super().__init__("sim_gen3")
        self.config = cfg = declare_config(self, SimGen3Config)
        try:
            v_max, a_max = load_joint_limits(cfg.joint_limits_file or config_file("joint_limits.yaml"))
        except ValueError as exc:
            raise ParameterConfigError(str(exc)) from exc
        self.arm = ArmSim(cfg, v_max, a_max)  # the controllers: trajectory / twist / pose -> joint reference
        self.physics = Gen3Mujoco(self.arm.q, find_description(cfg.description_path))
        self._contact_steps = 0
        self._not_simulated = 0
        self._wall0 = time.monotonic()
        self.pub_contacts = self.create_publisher(ArmContacts, SIM_CONTACTS, 10)
        self.create_subscription(ObstacleArray, OBSTACLES, self._on_obstacles, 10)
        self.create_timer(1.0 / cfg.contacts_rate_hz, self._publish_contacts)
        self._warned: dict[str, tuple[float, int]] = {}
        self.joint_names = cfg.joint_names
        self.pub = self.create_publisher(JointState, JOINT_STATES, 10)
        live = {cfg.command_mode} if cfg.command_mode != "all" else {"pose", "twist", "joint_trajectory"}
        if "joint_trajectory" in live:
            self.create_subscription(JointTrajectory, JOINT_TRAJECTORY, self._on_trajectory, 10)
        if "twist" in live:
            self.create_subscription(Twist, TWIST, self._on_twist, 10)
        if "pose" in live:
            self.create_subscription(PoseStamped, cfg.pose_target_topic, self._on_pose, 10)
        self._last_step = self._now_s()
        self.create_timer(1.0 / cfg.rate_hz, self._step)
        self.get_logger().info(
            f"simulated Gen3 at {cfg.rate_hz} Hz, joints {self.joint_names}, max joint velocity "
            f"{v_max.tolist()} rad/s, command_mode {cfg.command_mode}, pose targets on {cfg.pose_target_topic}, "
            f"twist frame {cfg.twist_frame}, physics {self.physics.source} at 1 kHz")

    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _drop(self, what: str, why: str) -> None:
        """Warn at most once per warn_throttle_s per message kind (a flood of bad twists must not
        hide a bad trajectory), saying how many were dropped silently in between."""
        now = time.monotonic()
        last, silent = self._warned.get(what, (-math.inf, 0))
        if now - last < self.config.warn_throttle_s:
            self._warned[what] = (last, silent + 1)
            return
        self._warned[what] = (now, 0)
        more = f" (+{silent} more dropped since the last warning)" if silent else ""
        self.get_logger().warning(f"dropped {what}: {why}{more}")

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        names = list(msg.joint_names)
        if sorted(names) != sorted(self.joint_names):
            self._drop("JointTrajectory", f"joint_names {names} must be exactly {self.joint_names} (any order)")
            return
        order = [names.index(n) for n in self.joint_names]
        times, positions = [], []
        for k, point in enumerate(msg.points):
            t = point.time_from_start.sec + point.time_from_start.nanosec * 1e-9
            if len(point.positions) != len(names) or not _finite(point.positions):
                self._drop("JointTrajectory", f"point {k} needs {len(names)} finite positions, got "
                                              f"{list(point.positions)}")
                return
            if len(point.velocities) not in (0, len(names)) or not _finite(point.velocities):
                self._drop("JointTrajectory", f"point {k}: velocities must be empty or {len(names)} finite "
                                              f"values, got {list(point.velocities)}")
                return
            if times and t <= times[-1]:
                self._drop("JointTrajectory", f"point {k}: time_from_start {t:.3f} s is not increasing")
                return
            times.append(t)
            positions.append(np.asarray(point.positions, dtype=float)[order])
        now = self._now_s()
        stamp = Time.from_msg(msg.header.stamp).nanoseconds * 1e-9
        self.arm.set_trajectory(now, stamp if stamp > 0.0 else now, np.array(times),
                                np.array(positions).reshape(-1, len(names)))

    def _on_twist(self, msg: Twist) -> None:
        linear = (msg.linear.x, msg.linear.y, msg.linear.z)
        angular = (msg.angular.x, msg.angular.y, msg.angular.z)
        if not _finite(linear + angular):
            self._drop("Twist", f"non-finite values linear={linear} angular={angular}")
            return
        scale = 1.0 / DEG_PER_RAD if self.config.twist_angular_unit == "deg_per_s" else 1.0  # kortex_driver: deg/s
        self.arm.set_twist(self._now_s(), np.array(linear), np.array(angular) * scale)

    def _on_pose(self, msg: PoseStamped) -> None:
        p, o = msg.pose.position, msg.pose.orientation
        position, quat = (p.x, p.y, p.z), (o.x, o.y, o.z, o.w)
        if msg.header.frame_id not in ("", self.config.base_frame):
            self._drop("pose target", f"frame_id '{msg.header.frame_id}' is not the base frame "
                                      f"'{self.config.base_frame}'")
            return
        if not _finite(position + quat):
            self._drop("pose target", f"non-finite values position={position} orientation={quat}")
            return
        use_orientation = self.config.pose_tracks_orientation
        if use_orientation and abs(math.sqrt(sum(v * v for v in quat)) - 1.0) > 1e-3:
            self._drop("pose target", f"orientation {quat} is not a unit quaternion")
            return
        self.arm.set_pose_target(np.array(position), np.array(quat) if use_orientation else None)

    def _on_obstacles(self, msg: ObstacleArray) -> None:
        try:
            self._not_simulated = self.physics.set_obstacles(obstacles_from_msg(msg))
        except ValueError as exc:
            self._drop("ObstacleArray", str(exc))

    def _publish_contacts(self) -> None:
        msg = ArmContacts(contact_steps=self._contact_steps, obstacles_not_simulated=self._not_simulated)
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self.config.base_frame
        msg.contacts = [f"{link}:{obstacle}" for link, obstacle in self.physics.contacts()]
        msg.min_link_distance = self.physics.min_link_distance()
        msg.real_time_factor = self.physics.sim_time / max(time.monotonic() - self._wall0, 1e-9)
        self._contact_steps = 0
        self.pub_contacts.publish(msg)

    def _step(self) -> None:
        # One clock reading per step: the state's stamp is the time it was integrated to, so
        # velocities computed from consecutive stamps are exact even when the timer jitters.
        now = self.get_clock().now()
        now_s = now.nanoseconds * 1e-9
        # A late timer (loaded machine) moves the arm less, never in one big jump.
        dt = min(max(now_s - self._last_step, 0.0), 5.0 / self.config.rate_hz)
        self._last_step = now_s
        if self.arm.mode in ("twist", "pose"):
            # Cartesian velocity control acts on the arm's actual state (as the Gen3's low-level does);
            # a joint trajectory is followed as the controller's own reference
            self.arm.q = unwrap_near(self.physics.q, self.arm.q)
        q_from = self.arm.q.copy()
        self.arm.step(dt, now_s)  # the controllers' reference, once per publish period
        steps = int(round(dt / TIMESTEP_S))
        qd_ref = (self.arm.q - q_from) / dt if dt > 0.0 else np.zeros_like(q_from)
        for k in range(1, steps + 1):  # tracked by the servos at 1 kHz along the reference's segment
            self.physics.set_targets(q_from + (k / steps) * (self.arm.q - q_from), qd_ref)
            self.physics.step()
            self._contact_steps += self.physics.data.ncon > 0  # only arm-obstacle pairs can touch
        msg = JointState()
        msg.header.stamp = now.to_msg()
        msg.name = self.joint_names
        msg.position = wrap_to_pi(self.physics.q).tolist()  # continuous joints wrapped, as kortex_driver reports them
        msg.velocity = self.physics.qd.tolist()
        msg.effort = [0.0] * len(self.joint_names)
        self.pub.publish(msg)


def main(args: list[str] | None = None) -> int:
    init(args)
    try:
        node = SimGen3()
    except ParameterConfigError as exc:
        print(f"sim_gen3: {exc}", file=sys.stderr)
        rclpy.try_shutdown()
        return 2
    spin_until_shutdown(node)
    return 0


if __name__ == "__main__":
    sys.exit(main())
