"""INT8 copies of one-step students: written only when they answer like the float model, with a manifest
the runtime loads, and refused with a one-line reason otherwise."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

from dnk_bringup.paths import model_file
from dnk_planner.core.arm_context import ArmContext
from dnk_planner.core.kinematics import wrap_to_pi
from dnk_planner.core.manifest import read_manifest, save_manifest
from dnk_training.arm.config import DemoConfig
from dnk_training.arm.offline import node_planner
from dnk_training.arm.trials import trial_scenes
from dnk_training.cli import main
from dnk_training.export import ExportParityError, parity_path
from dnk_training.quantize import int8_path, quantize_student


def _copy(name: str, tmp: Path) -> Path:
    src = model_file(f"{name}.onnx")
    for f in (src, src.with_suffix(".json"), parity_path(src)):
        shutil.copy(f, tmp / f.name)
    return tmp / src.name


def test_int8_copy_answers_like_the_float_student_and_plans_in_the_core(tmp_path: Path) -> None:
    src = _copy("arm-student", tmp_path)
    path, worst, rms = quantize_student(src)
    assert path == int8_path(src) == tmp_path / "arm-student-int8.onnx"
    assert 0.0 < rms < 0.02 and worst >= rms  # really quantized, and close
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert "MatMulInteger" in ops and "MatMul" not in ops
    assert path.stat().st_size < 0.35 * src.stat().st_size  # int8 weights
    m, float_m = read_manifest(path), read_manifest(src)
    assert m.model_id == float_m.model_id + "-int8" and float_m.onnx_sha256 in m.provenance["quantized_from"]
    assert float(m.provenance["quantization_rms_diff"]) == pytest.approx(rms, rel=1e-4)
    scene = trial_scenes(DemoConfig(), 1)[0]
    planners = [node_planner(p, None)[1] for p in (src, path)]  # the node's settings
    ctx = ArmContext(planners[0].manifest).build(wrap_to_pi(scene.q_start), scene.goal, scene.goal_q, scene.obstacles)
    a, b = (p.plan(ctx) for p in planners)
    assert a.feasible and b.feasible
    # same priors, near-identical candidates (joint plans in rad)
    assert np.abs(a.candidates[..., :7] - b.candidates[..., :7]).max() < 0.05


def test_refused_copies_write_nothing_and_say_why(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = _copy("arm-student", tmp_path)
    with pytest.raises(ExportParityError, match="RMS difference"):
        quantize_student(src, tol=1e-5)
    assert sorted(f.name for f in tmp_path.iterdir()) == ["arm-student.json", "arm-student.onnx",
                                                           "arm-student.parity.npz"]
    assert main(["quantize", "--model", str(src), "--tol", "1e-5"]) == 2
    assert "not written" in capsys.readouterr().err
    with pytest.raises(ValueError, match="one-step students"):
        quantize_student(_copy("arm-teacher", tmp_path))
    stale = read_manifest(src).model_copy(update={"onnx_sha256": "0" * 64})
    save_manifest(stale, src)
    with pytest.raises(ValueError, match="re-export"):
        quantize_student(src)
