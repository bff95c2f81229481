"""The simulated Gen3's physics: MuJoCo at 1 kHz, Kinova's description when available.

Model: Kinova's URDF + collision meshes (`description` folder holding gen3.urdf and meshes/,
e.g. ../shared/reference/kortex_gen3 in tests, or an expanded kortex_description on the robot
PC), or, without one, a model of ours built from the kinematics table with the collision
spheres fitted to those meshes (so `make demo` runs on a fresh machine). Every joint has a
position servo with velocity feed-forward (what the joint_trajectory_controller's PD with
feed-forward does on the real arm), gravity compensation as the Gen3's own low-level control,
and no self-collision. Obstacles are mocap bodies (a fixed pool of spheres and boxes) that
collide with the arm only; contacts and the smallest link-obstacle distance (mj_geomDistance)
are what the robot did, measured independently of the planner.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from dnk_planner.core.gen3_spheres import LINK_NAMES, SPHERES
from dnk_planner.core.geometry import ObstacleSet, matrix_to_quat
from dnk_planner.core.kinematics import _JOINT_ORIGINS, JOINT_LOWER, JOINT_UPPER, NUM_JOINTS

TIMESTEP_S = 0.001
MAX_SPHERES = 16
MAX_BOXES = 16
_PARKED = (0.0, 0.0, -100.0)   # where unused obstacle slots wait
_ARM, _OBSTACLE = 1, 2         # contype bits: the arm collides with obstacles, not with itself


@dataclass(frozen=True)
class ServoGains:
    kp: float = 1500.0   # N m / rad
    kv: float = 70.0     # N m s / rad


def _urdf_spec(description: Path) -> mujoco.MjSpec:
    urdf = (description / "gen3.urdf").read_text()
    at = urdf.index(">", urdf.index("<robot")) + 1
    tag = (f'<mujoco><compiler meshdir="{description}" strippath="false" discardvisual="true" '
           'fusestatic="false"/></mujoco>')
    return mujoco.MjSpec.from_string(urdf[:at] + tag + urdf[at:])


def _sphere_spec() -> mujoco.MjSpec:
    """The Gen3 from the kinematics table with our collision spheres as its geometry."""
    spec = mujoco.MjSpec()
    spec.compiler.degree = False  # joint ranges in rad, as the kinematics table
    parent = spec.worldbody.add_body(name=LINK_NAMES[0])
    for index, name in enumerate(LINK_NAMES):
        if index:
            (x, y, z), (roll, _, _) = _JOINT_ORIGINS[index - 1]
            parent = parent.add_body(name=name, pos=[x, y, z], quat=[np.cos(roll / 2), np.sin(roll / 2), 0.0, 0.0],
                                     mass=1.0, inertia=[0.005, 0.005, 0.005])
            joint = parent.add_joint(name=f"joint_{index}", type=mujoco.mjtJoint.mjJNT_HINGE, axis=[0, 0, 1])
            if np.isfinite(JOINT_UPPER[index - 1]):
                joint.range = [JOINT_LOWER[index - 1], JOINT_UPPER[index - 1]]
                joint.limited = mujoco.mjtLimited.mjLIMITED_TRUE
        for link, x, y, z, r in SPHERES:
            if link == index:
                parent.add_geom(type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[r, 0, 0], pos=[x, y, z])
    return spec


class Gen3Mujoco:
    """Joint state, servo targets, obstacles, contacts; `step(n)` advances n physics steps of 1 ms."""

    def __init__(self, q0: np.ndarray, description: Path | None = None, gains: ServoGains = ServoGains()) -> None:
        self.source = f"Kinova URDF + meshes ({description})" if description else "collision spheres (no description)"
        spec = _urdf_spec(description) if description else _sphere_spec()
        spec.option.timestep = TIMESTEP_S
        spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST  # servo damping stays stable at 1 kHz
        for body in spec.bodies:
            body.gravcomp = 1.0
        for geom in spec.geoms:
            geom.contype, geom.conaffinity = _ARM, _OBSTACLE
        joints = [spec.joint(f"joint_{i}") for i in range(1, NUM_JOINTS + 1)]
        for j in joints:
            j.armature = 0.05
            j.actfrclimited = mujoco.mjtLimited.mjLIMITED_FALSE
            spec.add_actuator(name=f"{j.name}_position", target=j.name,
                              trntype=mujoco.mjtTrn.mjTRN_JOINT).set_to_position(kp=gains.kp)
        for j in joints:
            spec.add_actuator(name=f"{j.name}_velocity", target=j.name,
                              trntype=mujoco.mjtTrn.mjTRN_JOINT).set_to_velocity(kv=gains.kv)
        for kind, count, gtype in (("sphere", MAX_SPHERES, mujoco.mjtGeom.mjGEOM_SPHERE),
                                   ("box", MAX_BOXES, mujoco.mjtGeom.mjGEOM_BOX)):
            for k in range(count):
                body = spec.worldbody.add_body(name=f"obstacle_{kind}_{k}", mocap=True, pos=list(_PARKED))
                body.add_geom(name=f"obstacle_{kind}_{k}", type=gtype, size=[0.01, 0.01, 0.01],
                              contype=_OBSTACLE, conaffinity=_ARM)
        self.model = spec.compile()
        self.data = mujoco.MjData(self.model)
        m = self.model
        self._qadr = np.array([m.jnt_qposadr[m.joint(f"joint_{i}").id] for i in range(1, NUM_JOINTS + 1)])
        self._dadr = np.array([m.jnt_dofadr[m.joint(f"joint_{i}").id] for i in range(1, NUM_JOINTS + 1)])
        # links that move (base_link is welded to the world: like the planner, it is not checked)
        self.arm_geoms = np.array([g for g in range(m.ngeom)
                                   if m.geom_contype[g] == _ARM and m.body_weldid[m.geom_bodyid[g]] != 0])
        self._slots = {kind: [m.geom(f"obstacle_{kind}_{k}").id for k in range(n)]
                       for kind, n in (("sphere", MAX_SPHERES), ("box", MAX_BOXES))}
        self.active: dict[int, str] = {}       # obstacle geom id -> obstacle id
        self.data.qpos[self._qadr] = q0
        self.set_targets(np.asarray(q0, dtype=float), np.zeros(NUM_JOINTS))
        mujoco.mj_forward(self.model, self.data)
        self.sim_time = 0.0

    @property
    def q(self) -> np.ndarray:
        return self.data.qpos[self._qadr].copy()

    @property
    def qd(self) -> np.ndarray:
        return self.data.qvel[self._dadr].copy()

    def set_targets(self, q_ref: np.ndarray, qd_ref: np.ndarray) -> None:
        self.data.ctrl[:NUM_JOINTS] = q_ref
        self.data.ctrl[NUM_JOINTS:] = qd_ref

    def step(self, n: int = 1) -> None:
        mujoco.mj_step(self.model, self.data, nstep=n)
        self.sim_time += n * TIMESTEP_S

    def set_obstacles(self, obstacles: ObstacleSet) -> int:
        """Place the set in the pool (the rest parked); returns how many did not fit (not simulated)."""
        m, d = self.model, self.data
        self.active = {}
        dropped = 0
        shapes = {"sphere": [(i, c, np.eye(3), [r, 0, 0]) for i, c, r in
                             zip(obstacles.sphere_ids, obstacles.sphere_centers, obstacles.sphere_radii)],
                  "box": list(zip(obstacles.box_ids, obstacles.box_centers, obstacles.box_rotations,
                                  obstacles.box_half_extents))}
        for kind, slots in self._slots.items():
            dropped += max(0, len(shapes[kind]) - len(slots))
            for k, geom in enumerate(slots):
                mocap = m.body_mocapid[m.geom_bodyid[geom]]
                if k < len(shapes[kind]):
                    name, center, rotation, size = shapes[kind][k]
                    m.geom_size[geom] = size
                    m.geom_rbound[geom] = float(np.linalg.norm(size)) if kind == "box" else float(size[0])
                    d.mocap_pos[mocap] = center
                    x, y, z, w = matrix_to_quat(rotation)
                    d.mocap_quat[mocap] = [w, x, y, z]
                    self.active[geom] = name
                else:
                    d.mocap_pos[mocap] = _PARKED
        mujoco.mj_forward(m, d)
        return dropped

    def contacts(self) -> list[tuple[str, str]]:
        """(link, obstacle id) of every arm-obstacle contact now."""
        m, d = self.model, self.data
        out = []
        for c in d.contact[:d.ncon]:
            for arm, other in ((c.geom1, c.geom2), (c.geom2, c.geom1)):
                if other in self.active and m.geom_contype[arm] == _ARM:
                    out.append((m.body(m.geom_bodyid[arm]).name, self.active[other]))
        return out

    def min_link_distance(self, distmax: float = 1.0) -> float:
        """Smallest distance between any arm geom and any active obstacle (m; distmax when farther)."""
        best, fromto = distmax, np.zeros(6)
        for obstacle in self.active:
            for arm in self.arm_geoms:
                best = min(best, mujoco.mj_geomDistance(self.model, self.data, int(arm), int(obstacle), distmax, fromto))
        return float(best)
