"""Prior construction: fixed entries exact, temperature scales the noise, seeded replays identical."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dnk_planner.core.config import PlannerConfig
from dnk_planner.core.manifest import read_manifest
from dnk_planner.core.normalizer import Normalizer
from dnk_planner.core.priors import PriorBuilder, check_values, fixed_entries, impose_fixed

CTX = {"ee_position": np.array([0.5, -0.1, 0.3], np.float32), "goal": np.array([0.2, 0.4, 0.6], np.float32)}


def test_fixed_entries_hold_normalized_context(identity_student: Path) -> None:
    m = read_manifest(identity_student)
    prior = PriorBuilder(m, 16, seed=0, temperature=0.5).build(CTX)
    norm = Normalizer.from_manifest(m)
    ee_n = (CTX["ee_position"] - norm.mean[:3]) / norm.std[:3]
    goal_n = (CTX["goal"] - norm.mean[3:]) / norm.std[3:]
    np.testing.assert_array_equal(prior[:, 0, :3], np.broadcast_to(ee_n, (16, 3)))
    np.testing.assert_array_equal(prior[:, :, 3:], np.broadcast_to(goal_n, (16, 8, 3)))
    # the free entries are noise, not the context
    assert np.std(prior[:, 1:, :3]) > 0.3
    np.testing.assert_allclose(norm.denormalize(prior[0, 0]), np.r_[CTX["ee_position"], CTX["goal"]], atol=1e-6)


@pytest.mark.parametrize("temperature", [0.25, 1.0, 2.0])
def test_temperature_scales_std(identity_student: Path, temperature: float) -> None:
    m = read_manifest(identity_student)
    prior = PriorBuilder(m, 4096, seed=1, temperature=temperature).build(CTX)
    free = prior[:, 1:, :3]
    assert abs(free.std() / temperature - 1.0) < 0.02
    assert abs(free.mean()) < 0.02 * temperature


def test_same_seed_replays_bit_identical(identity_student: Path) -> None:
    m = read_manifest(identity_student)
    a, b, c = (PriorBuilder(m, 64, seed=s, temperature=0.5) for s in (7, 7, 8))
    for _ in range(3):
        pa, pb, pc = a.build(CTX).copy(), b.build(CTX).copy(), c.build(CTX).copy()
        assert pa.tobytes() == pb.tobytes()
        assert not np.array_equal(pa[:, 1:], pc[:, 1:])
    # successive decisions get fresh noise
    assert not np.array_equal(pa, a.build(CTX))


def test_buffer_reused_and_float32(identity_student: Path) -> None:
    builder = PriorBuilder(read_manifest(identity_student), 8, seed=0)
    first = builder.build(CTX)
    assert first.dtype == np.float32 and first.shape == (8, 8, 6)
    assert builder.build(CTX) is first


def test_normalizer_round_trip_and_impose_raw(identity_student: Path) -> None:
    m = read_manifest(identity_student)
    norm = Normalizer.from_manifest(m)
    x = np.random.default_rng(0).standard_normal((3, 8, 6)).astype(np.float32)
    np.testing.assert_allclose(norm.denormalize(norm.normalize(x)), x, atol=1e-6)
    impose_fixed(x, fixed_entries(m), CTX)
    np.testing.assert_array_equal(x[:, 0, :3], np.broadcast_to(CTX["ee_position"], (3, 3)))
    np.testing.assert_array_equal(x[:, :, 3:], np.broadcast_to(CTX["goal"], (3, 8, 3)))


def test_check_values_names_bad_key(identity_student: Path) -> None:
    m = read_manifest(identity_student)
    with pytest.raises(ValueError, match="'goal' is missing"):
        check_values(m, {"ee_position": CTX["ee_position"]})
    with pytest.raises(ValueError, match=r"'ee_position' has shape \(2,\)"):
        check_values(m, {**CTX, "ee_position": np.zeros(2)})
    with pytest.raises(ValueError, match="'goal' contains NaN"):
        check_values(m, {**CTX, "goal": np.array([0.0, np.nan, 0.0])})
    assert check_values(m, CTX)["goal"].dtype == np.float32


def test_bad_builder_arguments(identity_student: Path) -> None:
    m = read_manifest(identity_student)
    with pytest.raises(ValueError, match="num_candidates"):
        PriorBuilder(m, 0, seed=0)
    with pytest.raises(ValueError, match="temperature"):
        PriorBuilder(m, 4, seed=0, temperature=-1.0)


def test_prefetch_keeps_replays_identical(identity_student: Path) -> None:
    m = read_manifest(identity_student)
    plain, early = PriorBuilder(m, 16, seed=4), PriorBuilder(m, 16, seed=4)
    for i in range(4):
        if i % 2:
            early.prefetch()
            early.prefetch()  # a second prefetch must not skip a draw
        assert plain.build(CTX).tobytes() == early.build(CTX).tobytes()


class _Flat:
    """Scores every candidate 0: the test looks at the candidates, not at the choice."""

    def bind(self, manifest) -> None:
        pass

    def score(self, candidates: np.ndarray, ctx) -> np.ndarray:
        return np.zeros(len(candidates))


def test_relative_columns_reach_the_model_as_offsets_and_come_back_absolute(tmp_path: Path) -> None:
    """`relative`: the model sees the planned column minus the context value (its fixed row 0 is 0), and
    the planner adds the value back to every row before anything scores or executes it."""
    from planner_testing import arm_manifest, write_identity_student

    from dnk_planner.core import Context, Planner
    from dnk_planner.core.manifest import ColumnSpec, FixedSpec, RelativeSpec, load_model, save_manifest

    path = write_identity_student(tmp_path / "student.onnx")
    save_manifest(arm_manifest(path, 8, columns=[ColumnSpec(name="ee_position", dim=3), ColumnSpec(name="here", dim=3)],
                               fixed=[FixedSpec(column="ee_position", rows="first", source="ee_position"),
                                      FixedSpec(column="here", rows="all", source="ee_position")],
                               relative=[RelativeSpec(column="ee_position", source="ee_position")]), path)
    model = load_model(path, provider="cpu")
    norm = Normalizer.from_manifest(model.manifest)
    here = CTX["ee_position"]
    prior = PriorBuilder(model.manifest, 4, seed=0, temperature=0.5).build({"ee_position": here})
    np.testing.assert_allclose(norm.denormalize(prior[:, 0])[:, :3], 0.0, atol=1e-6)      # offset of row 0
    np.testing.assert_allclose(norm.denormalize(prior[:, 3])[:, 3:], np.broadcast_to(here, (4, 3)), atol=1e-6)

    planner = Planner(model, _Flat(), PlannerConfig(num_candidates=4, temperature=0.0))
    d = planner.plan(Context(values={"ee_position": here}))
    offset = np.asarray(model.manifest.normalizer.mean[:3], dtype=np.float32)  # what the identity returns at T = 0
    np.testing.assert_array_equal(d.candidates[:, 0, :3], np.broadcast_to(here, (4, 3)))
    np.testing.assert_allclose(d.candidates[:, 1:, :3], np.broadcast_to(here + offset, (4, 7, 3)), atol=1e-6)
    np.testing.assert_allclose(d.action, here + offset, atol=1e-6)
