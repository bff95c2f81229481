"""Closed-loop arm trials over ROS 2 DDS (Table II): each policy on the same unseen seeded scenes.

    dnk-train arm-trials --trials 50 --out reports/table2

One planner node process per policy (the same node, parameters, selector and controller mode; only
`model_path` differs; the sim follows only that mode's command, as with one active controller), one sim_gen3 process (MuJoCo) per trial started at the scene's start configuration, the
scene's obstacles published at 2 Hz as a perception node would, and one SetGoal. Outcomes are
measured from what the arm did: forward kinematics of the sim's /joint_states (end effector and
whole-arm clearance with the planner's geometry) and the sim's own contact report
(/sim_gen3/contacts). The planner's status stream gives only what describes the planner itself:
decision latency, deadline misses and cycles spent holding.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dnk_planner.core.arm_geometry import arm_clearance
from dnk_planner.core.geometry import ObstacleSet
from dnk_planner.core.kinematics import JOINT_NAMES, forward_kinematics, wrap_to_pi

from .config import DemoConfig
from .scenes import Scene, sample_scene, scene_rng

TRIAL_SEED = 20261202       # the trials' scene stream; the demos use DemoConfig.seed (0): no scene is shared
GOAL_TOLERANCE_M = 0.01     # success: end effector within 1 cm of the goal ...
SETTLE_S = 1.0              # ... continuously for this long, measured from /joint_states
OBSTACLE_PERIOD_S = 0.5


@dataclass(frozen=True)
class Policy:
    """A named model file the planner node loads (`model_path`); `trials` / `timeout_s` override the
    run's (a 30-step teacher on CPU moves one control period per 1-2 s decision); `params` are planner
    node parameters ("name:=value") over planner.yaml for this policy only (e.g. the analytic model's
    own prior temperature)."""

    name: str
    model: Path
    trials: int | None = None
    timeout_s: float | None = None
    params: tuple[str, ...] = ()


def trial_scenes(cfg: DemoConfig, count: int, seed: int = TRIAL_SEED) -> list[Scene]:
    """`count` scenes from the demos' distribution (same SceneConfig and start/goal clearance),
    drawn from their own seed so none was seen in training."""
    return [sample_scene(scene_rng(seed, i), cfg.scene, cfg.margin_m + cfg.planner.plan_buffer_m)
            for i in range(count)]


def obstacle_messages(obstacles: ObstacleSet) -> list:
    """dnk_msgs/Obstacle messages of an ObstacleSet (spheres, then boxes)."""
    from dnk_planner.core.geometry import matrix_to_quat
    from dnk_planner.ros.client import box, sphere

    out = [sphere(i, c, r) for i, c, r in zip(obstacles.sphere_ids, obstacles.sphere_centers, obstacles.sphere_radii)]
    out += [box(i, c, 2.0 * h, matrix_to_quat(r)) for i, c, r, h in
            zip(obstacles.box_ids, obstacles.box_centers, obstacles.box_rotations, obstacles.box_half_extents)]
    return out


def settled_from(times: np.ndarray, error: np.ndarray) -> int | None:
    """Index from which the end effector's distance to the goal (`error`, m) stays within
    GOAL_TOLERANCE_M to the end, if that last stretch lasts SETTLE_S (None otherwise): reaching
    means held there, not passing by."""
    outside = np.flatnonzero(error > GOAL_TOLERANCE_M)
    first_in = 0 if len(outside) == 0 else int(outside[-1]) + 1
    held = first_in < len(times) and times[-1] - times[first_in] >= SETTLE_S - 1e-9
    return first_in if held else None


def measure(times: np.ndarray, q: np.ndarray, scene: Scene, timeout_s: float) -> dict:
    """Outcome of one trial from the arm's recorded joint states (times s from the goal, q (T, 7) rad)."""
    ee = forward_kinematics(q)[:, :3, 3]
    err = np.linalg.norm(ee - scene.goal, axis=1)
    # completion: the first time from which the end effector stays inside the tolerance to the end
    first_in = settled_from(times, err)
    reached = first_in is not None and times[first_in] <= timeout_s
    return {
        "reached": bool(reached),
        "completion_s": float(times[first_in]) if reached else math.nan,
        "terminal_error_mm": float(err[-1] * 1e3),
        "min_ee_clearance_mm": float(scene.obstacles.min_signed_distance(ee).min() * 1e3),
        "min_arm_clearance_mm": float(arm_clearance(q, scene.obstacles).min() * 1e3),
        "path_length_m": float(np.linalg.norm(np.diff(ee, axis=0), axis=1).sum()),
        "ee_path": ee[::5].round(4).tolist(),   # every 5th state, for the path plot
    }


class TrialRunner:
    """Runs trials of one policy: the planner node stays up, a sim is started per trial."""

    def __init__(self, policy: Policy, sim_params: list[str], planner_params: list[str], log_dir: Path,
                 controller_mode: str = "joint_trajectory") -> None:
        from dnk_msgs.msg import ArmContacts
        from dnk_planner.ros import topics
        from lifecycle_msgs.msg import Transition
        from dnk_planner.ros.client import PlannerClient, start_planner_process
        from dnk_bringup.paths import config_file
        from sensor_msgs.msg import JointState

        self.policy = policy
        self.controller_mode = controller_mode
        self.sim_params = sim_params
        self.log_dir = log_dir
        self.planner = start_planner_process(
            [f"model_path:={policy.model.resolve()}", f"controller_mode:={controller_mode}", *planner_params,
             *policy.params],
            params_file=str(config_file("planner.yaml")))
        self.client = PlannerClient()
        self.joint_states = self.client.collect(JointState, topics.JOINT_STATES, qos=1000)
        self.contacts = self.client.collect(ArmContacts, topics.SIM_CONTACTS)
        if not self.client.transition(Transition.TRANSITION_CONFIGURE, timeout=120.0):  # loads the model
            raise RuntimeError(f"the planner node refused to configure with {policy.model}; its log: "
                               f"{self.close()[-3000:]}")

    def _start_sim(self, q0: np.ndarray):
        from dnk_bringup.paths import config_file
        from dnk_planner.ros.client import ChildProcess

        q = ",".join(f"{v:.6f}" for v in wrap_to_pi(q0))  # as the driver reports it
        args = [sys.executable, "-m", "dnk_bringup.sim_gen3", "--ros-args", "--params-file",
                str(config_file("sim_gen3.yaml")), "-p", f"initial_positions:=[{q}]", "-p", f"command_mode:={self.controller_mode}"]
        for p in self.sim_params:
            args += ["-p", p]
        return ChildProcess(args)

    def run(self, index: int, scene: Scene, timeout_s: float) -> dict:
        """One trial; every number from the arm's joint states and the sim, except the planner's timing."""
        from dnk_msgs.msg import PlannerStatus
        from dnk_planner.ros.client import stop_process
        from lifecycle_msgs.msg import Transition

        c = self.client
        sim = self._start_sim(scene.q_start)
        msgs = obstacle_messages(scene.obstacles)
        try:
            c.wait_for(lambda: (q := c.joint_positions()) is not None
                       and np.allclose(wrap_to_pi(q - scene.q_start), 0.0, atol=2e-3),
                       timeout=30, what=f"sim_gen3 at the start configuration of scene {index}")
            # activation clears the last trial's goal; IDLE = fresh joint states, waiting for a goal
            c.status.clear()
            if not c.transition(Transition.TRANSITION_ACTIVATE, timeout=60.0):
                raise RuntimeError("the planner node refused to activate")
            c.wait_for(lambda: (s := c.latest_status()) and s.state == PlannerStatus.IDLE, timeout=30,
                       what="the planner waiting for a goal")
            c.publish_obstacles(msgs)
            time.sleep(OBSTACLE_PERIOD_S)  # the planner reads the latest obstacle array once per cycle
            for stream in (self.joint_states, self.contacts, c.status):
                stream.clear()
            t0 = time.monotonic()
            answer = c.set_goal(scene.goal, tolerance=GOAL_TOLERANCE_M)
            last_obstacles = time.monotonic()
            while answer.accepted and time.monotonic() - t0 < timeout_s + SETTLE_S:
                time.sleep(0.05)
                if time.monotonic() - last_obstacles >= OBSTACLE_PERIOD_S:
                    c.publish_obstacles(msgs)
                    last_obstacles = time.monotonic()
                if self._settled(scene):
                    break
            states, contacts, status = list(self.joint_states), list(self.contacts), list(c.status)
        finally:
            # holds: no command reaches the next trial's sim (a teacher decision can delay the answer).
            # The sim is stopped even when that fails: a sim left running publishes /joint_states into
            # every later trial (it did once, after a deactivate timed out, and corrupted them).
            try:
                c.transition(Transition.TRANSITION_DEACTIVATE, timeout=60.0)
            finally:
                log = stop_process(sim)
        if "Traceback" in log:
            (self.log_dir / f"{self.policy.name}_sim_{index}.log").write_text(log)
        return self._result(index, scene, answer, states, contacts, status, timeout_s, PlannerStatus)

    def _settled(self, scene: Scene) -> bool:
        """At the goal for SETTLE_S by the last joint states (the arm's own report, not the planner's)."""
        recent = self.joint_states[-400:]  # 4 s at 100 Hz
        if not recent:
            return False
        ee = forward_kinematics(np.array([_positions(m) for m in recent]))[:, :3, 3]
        error = np.linalg.norm(ee - scene.goal, axis=1)
        return settled_from(np.array([_stamp(m) for m in recent]), error) is not None

    def _result(self, index, scene, answer, states, contacts, status, timeout_s, PlannerStatus) -> dict:
        base = {"policy": self.policy.name, "scene": index, "blocking": bool(scene.blocking),
                "obstacles": len(scene.obstacles.sphere_ids) + len(scene.obstacles.box_ids),
                "goal_accepted": bool(answer.accepted), "goal_message": answer.message}
        if not states:
            return {**base, "reached": False, "success": False, "error": "no joint states recorded"}
        stamps = np.array([_stamp(m) for m in states])
        # seconds on the sim's clock (its stamps) from the first state after the goal request
        times = stamps - stamps[0]
        q = np.array([_positions(m) for m in states])
        out = {**base, **measure(times, q, scene, timeout_s)}
        steps = int(sum(m.contact_steps for m in contacts))
        pairs = sorted({p for m in contacts for p in m.contacts})
        lat = np.array([s.last_latency_ms for s in status if math.isfinite(s.last_latency_ms)])
        out.update(
            contact_steps=steps, contact_pairs=pairs,
            sim_min_link_distance_mm=float(min((m.min_link_distance for m in contacts), default=math.nan) * 1e3),
            success=bool(out["reached"] and steps == 0),
            decisions=int(len(lat)), latency_ms=lat.round(4).tolist(),
            deadline_misses=int(status[-1].deadline_misses - status[0].deadline_misses) if status else 0,
            holding_cycles=int(sum(s.state == PlannerStatus.HOLDING for s in status)),
            duration_s=float(times[-1]))
        return out

    def close(self) -> str:
        from dnk_planner.ros.client import stop_process

        self.client.close()
        return stop_process(self.planner)


def _stamp(msg) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


def _positions(msg) -> np.ndarray:
    index = dict(zip(msg.name, msg.position))
    return np.array([index[n] for n in JOINT_NAMES])


def domain_id() -> str:
    """A ROS_DOMAIN_ID for this run (parallel runs must not cross) unless the caller set one."""
    from dnk_planner.ros.domain import default_domain_id

    return default_domain_id()
