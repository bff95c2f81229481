"""Validation of what the planner node receives: each check names the field and the fix.

Every function raises `InputError(kind, message)`; `kind` is the /diagnostics counter the node
increments ("joint_states.out_of_limits", ...), so a fault is counted where it is recognized.
Obstacle arrays are checked on their serialized bytes first: rclpy's deserialization costs about
35 us per obstacle here, so an array of 10,000 obstacles would stall the control loop for a third
of a second before any Python check could refuse it.
"""
from __future__ import annotations

import struct

import numpy as np
from sensor_msgs.msg import JointState

from dnk_msgs.msg import Obstacle, ObstacleArray
from dnk_planner.core.geometry import ObstacleSet
from dnk_planner.core.kinematics import JOINT_LOWER, JOINT_UPPER


# Position bounds a measured joint may have: URDF limits, [-pi, pi] for continuous joints (reported wrapped).
_LOW = np.where(np.isfinite(JOINT_LOWER), JOINT_LOWER, -np.pi)
_HIGH = np.where(np.isfinite(JOINT_UPPER), JOINT_UPPER, np.pi)


class InputError(ValueError):
    """A message the node refuses; `kind` is its /diagnostics counter."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def obstacle_count(raw: bytes) -> int:
    """Number of obstacles in a serialized (CDR) ObstacleArray, read without deserializing it.

    Layout: 4-byte encapsulation header, std_msgs/Header (int32 sec, uint32 nanosec, string
    frame_id as uint32 length incl. NUL + bytes), then the obstacle sequence's uint32 length,
    4-byte aligned relative to the end of the encapsulation header.
    """
    if len(raw) < 20:
        raise InputError("obstacles.invalid", f"serialized ObstacleArray of {len(raw)} bytes is truncated")
    order = "<" if raw[1] & 1 else ">"
    (frame_len,) = struct.unpack_from(order + "I", raw, 4 + 8)
    offset = (12 + frame_len + 3) & ~3
    if 4 + offset + 4 > len(raw):
        raise InputError("obstacles.invalid", "serialized ObstacleArray is truncated after its header")
    (count,) = struct.unpack_from(order + "I", raw, 4 + offset)
    return count


def obstacles_from_msg(msg: ObstacleArray) -> ObstacleSet:
    """ObstacleArray -> the core's ObstacleSet; ValueError names the obstacle and the field.

    Shape and dimension count are message-level checks; sizes, finiteness and quaternions are
    validated by ObstacleSet.from_shapes, the one place that owns those rules.
    """
    spheres, boxes = [], []
    for k, obs in enumerate(msg.obstacles):
        name = obs.id or f"#{k}"
        p, o = obs.pose.position, obs.pose.orientation
        center, quat = (p.x, p.y, p.z), (o.x, o.y, o.z, o.w)
        dims = list(obs.dimensions)
        if obs.shape == Obstacle.SPHERE and len(dims) == 1:
            spheres.append((name, center, dims[0]))
        elif obs.shape == Obstacle.BOX and len(dims) == 3:
            boxes.append((name, center, quat, dims))
        elif obs.shape in (Obstacle.SPHERE, Obstacle.BOX):
            raise ValueError(f"obstacle '{name}': dimensions has {len(dims)} values; "
                             f"{'SPHERE needs [radius]' if obs.shape == Obstacle.SPHERE else 'BOX needs [x, y, z] sizes'}")
        else:
            raise ValueError(f"obstacle '{name}': shape {obs.shape} is neither SPHERE (0) nor BOX (1)")
    return ObstacleSet.from_shapes(spheres=spheres, boxes=boxes)


def joint_positions(msg: JointState, index: dict[str, int], tolerance_rad: float) -> np.ndarray:
    """The 7 arm joint positions (rad) of a JointState, in joint_1..joint_7 order.

    Refuses: names and positions of different lengths, an arm joint named twice or missing,
    non-finite values, and positions beyond the URDF limits by more than `tolerance_rad`
    (continuous joints arrive wrapped to [-pi, pi], as kortex_driver reports them).
    Other joints (a gripper's) are ignored.
    """
    if len(msg.position) != len(msg.name):
        raise InputError("joint_states.names", f"{len(msg.name)} names but {len(msg.position)} positions. "
                         "Fix: publish one position per name")
    q = np.full(7, np.nan)
    seen = np.zeros(7, dtype=bool)
    for name, value in zip(msg.name, msg.position):
        i = index.get(name)
        if i is not None:
            if seen[i]:
                raise InputError("joint_states.names", f"joint '{name}' appears twice. Fix: one value per joint")
            q[i], seen[i] = value, True
    if not seen.all():
        expected = sorted(index, key=index.get)
        missing = [n for n, s in zip(expected, seen) if not s]
        raise InputError("joint_states.names", f"joints {missing} missing (got {list(msg.name)}). "
                         "Fix: check the 'joint_prefix' parameter")
    if not np.all(np.isfinite(q)):
        raise InputError("joint_states.non_finite", f"non-finite joint position {q.tolist()}")
    bad = np.flatnonzero((q < _LOW - tolerance_rad) | (q > _HIGH + tolerance_rad))
    if bad.size:
        i = int(bad[0])
        raise InputError("joint_states.out_of_limits",
                         f"joint_{i + 1} = {q[i]:.4f} rad is outside its limits [{_LOW[i]:.4f}, "
                         f"{_HIGH[i]:.4f}] (+- {tolerance_rad} rad tolerance). Fix: check the "
                         "driver's joint order and units (rad), and that continuous joints are wrapped to [-pi, pi]")
    return q


def stamp_age(stamp_ns: int, now_ns: int, future_tolerance_s: float, stale_s: float) -> float:
    """Age of a header stamp, s (0 for a zero stamp: reception time is used); refuses stamps from
    the future beyond `future_tolerance_s` and stamps older than `stale_s`."""
    if stamp_ns == 0:
        return 0.0
    age = (now_ns - stamp_ns) * 1e-9
    if age < -future_tolerance_s:
        raise InputError("joint_states.stamp_future",
                         f"header.stamp is {-age:.3f} s in the future (tolerance {future_tolerance_s} s). Fix: "
                         "synchronize the clocks (chrony/NTP) or check use_sim_time on both ends")
    if age > stale_s:
        raise InputError("joint_states.stamp_stale",
                         f"header.stamp is {age:.3f} s old, beyond stale_joint_state_timeout_s = {stale_s} s. "
                         "Fix: check the driver is publishing live states and the clocks agree")
    return max(age, 0.0)
