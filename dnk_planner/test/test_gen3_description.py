"""The project's Gen3 model against Kinova's own description (../shared/reference/kortex_gen3).

FK is compared with the URDF as MuJoCo loads it (not our parser), the collision spheres with the
collision meshes' vertices, and the fast batched kernel the selector uses with the reference FK.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from arm_testing import arm_clearance

from dnk_planner.core.arm_geometry import arm_sweep
from dnk_planner.core.geometry import ObstacleSet
from dnk_planner.core.gen3_spheres import SPHERES
from dnk_planner.core.kinematics import CONTINUOUS, link_frames, unwrap_near, wrap_to_pi
from dnk_planner.testing.gen3_fit import LINKS, contains, read_stl

KORTEX = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "kortex_gen3"
needs_description = pytest.mark.skipif(not KORTEX.is_dir(), reason=f"Kinova's description not at {KORTEX}")
FRAMES = ("base_link", "shoulder_link", "half_arm_1_link", "half_arm_2_link", "forearm_link",
          "spherical_wrist_1_link", "spherical_wrist_2_link", "bracelet_link", "end_effector_link")


@needs_description
def test_fk_equals_the_urdf_loaded_by_mujoco() -> None:
    mujoco = pytest.importorskip("mujoco")
    urdf = (KORTEX / "gen3.urdf").read_text()
    at = urdf.index(">", urdf.index("<robot")) + 1
    tag = f'<mujoco><compiler meshdir="{KORTEX}" strippath="false" discardvisual="true" fusestatic="false"/></mujoco>'
    model = mujoco.MjModel.from_xml_string(urdf[:at] + tag + urdf[at:])
    data = mujoco.MjData(model)
    rng = np.random.default_rng(0)
    for _ in range(100):
        q = rng.uniform(-np.pi, np.pi, 7)
        data.qpos[:] = q
        mujoco.mj_kinematics(model, data)
        frames = link_frames(q)
        for i, name in enumerate(FRAMES):
            body = model.body(name).id
            np.testing.assert_allclose(frames[i, :3, 3], data.xpos[body], atol=1e-6)
            np.testing.assert_allclose(frames[i, :3, :3], data.xmat[body].reshape(3, 3), atol=1e-6)


@needs_description
@pytest.mark.parametrize("index", range(len(LINKS)))
def test_collision_spheres_contain_every_mesh_vertex(index: int) -> None:
    _, mesh, _ = LINKS[index]
    vertices = read_stl(KORTEX / "meshes" / mesh)
    rows = np.array([s for s in SPHERES if s[0] == index])
    assert len(rows) >= 1
    assert contains(vertices, rows[:, 1:4], rows[:, 4]).all()


def test_arm_sweep_matches_reference_fk_and_clearance() -> None:
    """The compiled whole-arm pass against link_frames + collision_spheres + point distances, in both
    dtypes, with spheres and boxes near and inside the arm."""
    rng = np.random.default_rng(1)
    q = rng.uniform(-3, 3, (5, 9, 7))
    frames = link_frames(q)
    obstacles = ObstacleSet.from_shapes(
        spheres=[("a", (0.3, 0.1, 0.4), 0.1), ("b", (-0.2, 0.3, 0.6), 0.05)],
        boxes=[("c", (0.0, -0.4, 0.3), (0.2, 0.1, 0.3, 0.9), (0.2, 0.3, 0.4)), ("t", (0, 0, -0.05), (0, 0, 0, 1), (2, 2, 0.1))])
    reference = arm_clearance(q, obstacles)
    assert (reference < 0).any() and (reference > 0).any()              # both sides of contact are covered
    clear, ee = arm_sweep(q, obstacles)
    assert clear.shape == (5, 9) and ee.shape == (3, 5, 9)               # planes: (xyz, ...)
    np.testing.assert_allclose(clear, reference, atol=1e-12)
    np.testing.assert_allclose(np.moveaxis(ee, 0, -1), frames[..., -1, :3, 3], atol=1e-12)
    c32, e32 = arm_sweep(q.astype(np.float32), obstacles)
    assert c32.dtype == e32.dtype == np.float32
    assert np.abs(c32 - reference).max() < 1e-5 and np.abs(np.moveaxis(e32, 0, -1) - frames[..., -1, :3, 3]).max() < 1e-5
    free, _ = arm_sweep(q, None)
    assert np.all(free == np.inf)


def test_wrap_and_unwrap_continuous_joints() -> None:
    q = np.array([3.5, 2.0, -4.0, 1.0, 7.0, -2.0, np.pi])
    w = wrap_to_pi(q)
    assert np.all(w[CONTINUOUS] >= -np.pi) and np.all(w[CONTINUOUS] < np.pi)
    np.testing.assert_array_equal(w[~CONTINUOUS], q[~CONTINUOUS])           # limited joints untouched
    np.testing.assert_allclose(np.cos(w), np.cos(q), atol=1e-12)            # same angles
    target = np.array([3.3, 0.1, 0.0, 0.0, 0.0, 0.0, 0.0])                  # planned past +pi on joint 1
    measured = wrap_to_pi(np.array([3.2, 0.1, 0.0, 0.0, 0.0, 0.0, 0.0]))   # reported as about -3.08
    cmd = unwrap_near(target, measured)
    assert abs(cmd[0] - measured[0]) < 0.2                                  # no 2 pi swing commanded
    np.testing.assert_allclose(np.cos(cmd), np.cos(target), atol=1e-12)
