"""Model contract: a good model loads; every kind of mismatch is refused naming the field."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from planner_testing import arm_manifest, save_graph
from onnx import TensorProto, helper

from dnk_planner.core.manifest import ModelContractError, ModelManifest, load_model, read_manifest, save_manifest, sha256_file


def edit_manifest(onnx_path: Path, **changes) -> None:
    json_path = onnx_path.with_suffix(".json")
    raw = json.loads(json_path.read_text())
    raw.update(changes)
    json_path.write_text(json.dumps(raw))


def refused(path: Path) -> ModelContractError:
    with pytest.raises(ModelContractError) as info:
        load_model(path, provider="cpu")
    return info.value


def test_good_model_loads_by_onnx_or_json_and_runs(identity_student: Path) -> None:
    for p in (identity_student, identity_student.with_suffix(".json")):
        model = load_model(p, provider="cpu", threads=1)
        assert model.manifest.dim == 6 and model.manifest.horizon == 8
        x = np.random.default_rng(0).standard_normal((5, 8, 6)).astype(np.float32)
        np.testing.assert_array_equal(model.run(prior=x)["trajectory"], x)
        out = {"trajectory": np.zeros((5, 8, 6), np.float32)}
        model.run_into(out, prior=x)
        np.testing.assert_array_equal(out["trajectory"], x)


def test_manifest_round_trips(identity_student: Path) -> None:
    m = read_manifest(identity_student)
    again = ModelManifest.model_validate_json(identity_student.with_suffix(".json").read_text())
    assert m == again
    assert m.column_slices == {"ee_position": slice(0, 3), "goal": slice(3, 6)}


def test_hash_mismatch_refused(identity_student: Path) -> None:
    edit_manifest(identity_student, onnx_sha256="0" * 64)
    assert refused(identity_student).field == "onnx_sha256"


def test_shape_mismatch_refused(identity_student: Path) -> None:
    edit_manifest(identity_student, horizon=9,
                  inputs=[{"name": "prior", "shape": [None, 9, 6], "dtype": "float32"}],
                  outputs=[{"name": "trajectory", "shape": [None, 9, 6], "dtype": "float32"}])
    err = refused(identity_student)
    assert err.field == "inputs.prior.shape" and "[None, 9, 6]" in str(err)


def test_fixed_batch_in_file_refused(tmp_path: Path) -> None:
    path = save_graph(tmp_path / "fixed.onnx", [helper.make_node("Identity", ["prior"], ["trajectory"])],
                      [helper.make_tensor_value_info("prior", TensorProto.FLOAT, [64, 8, 6])],
                      [helper.make_tensor_value_info("trajectory", TensorProto.FLOAT, [64, 8, 6])])
    save_manifest(arm_manifest(path, 8), path)
    assert refused(path).field == "inputs.prior.shape"


def test_dtype_mismatch_refused(tmp_path: Path) -> None:
    path = save_graph(tmp_path / "f64.onnx", [helper.make_node("Identity", ["prior"], ["trajectory"])],
                      [helper.make_tensor_value_info("prior", TensorProto.DOUBLE, ["b", 8, 6])],
                      [helper.make_tensor_value_info("trajectory", TensorProto.DOUBLE, ["b", 8, 6])])
    save_manifest(arm_manifest(path, 8), path)
    err = refused(path)
    assert err.field == "inputs.prior.dtype" and "float64" in str(err)


def test_io_name_mismatch_refused(tmp_path: Path) -> None:
    path = save_graph(tmp_path / "named.onnx", [helper.make_node("Identity", ["x"], ["trajectory"])],
                      [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 8, 6])],
                      [helper.make_tensor_value_info("trajectory", TensorProto.FLOAT, ["b", 8, 6])])
    save_manifest(arm_manifest(path, 8), path)
    err = refused(path)
    assert err.field == "inputs" and "'x'" in str(err)


def test_role_io_names_checked_in_manifest(identity_student: Path) -> None:
    edit_manifest(identity_student, role="classifier")
    err = refused(identity_student)
    assert err.field == "inputs" and "classifier" in str(err)


def test_unknown_fixed_or_action_column_refused(identity_student: Path) -> None:
    raw = json.loads(identity_student.with_suffix(".json").read_text())
    raw["fixed"][1]["column"] = "target"
    edit_manifest(identity_student, fixed=raw["fixed"])
    assert refused(identity_student).field == "fixed.1.column"
    raw["fixed"][1]["column"] = "goal"
    edit_manifest(identity_student, fixed=raw["fixed"], action={"column": "joint", "row": 1})
    assert refused(identity_student).field == "action.column"


def test_normalizer_length_and_std_checked(identity_student: Path) -> None:
    edit_manifest(identity_student, normalizer={"mean": [0.0] * 5, "std": [1.0] * 6})
    assert refused(identity_student).field == "normalizer.mean"
    edit_manifest(identity_student, normalizer={"mean": [0.0] * 6, "std": [1.0] * 5 + [0.0]})
    assert refused(identity_student).field == "normalizer.std"


def test_wrong_format_version_refused(identity_student: Path) -> None:
    edit_manifest(identity_student, format_version=2)
    err = refused(identity_student)
    assert err.field == "format_version" and "re-export" in err.fix


def test_opset_mismatch_refused(identity_student: Path) -> None:
    edit_manifest(identity_student, opset=13)
    assert refused(identity_student).field == "opset"


def test_corrupt_onnx_refused(identity_student: Path) -> None:
    identity_student.write_bytes(identity_student.read_bytes()[:40] + b"\xff" * 16)
    edit_manifest(identity_student, onnx_sha256=sha256_file(identity_student))
    assert refused(identity_student).field == "onnx file"


def test_missing_files_refused(identity_student: Path) -> None:
    identity_student.with_suffix(".json").unlink()
    err = refused(identity_student)
    assert err.field == "manifest" and "save_manifest" in err.fix
    assert refused(identity_student.parent / "nope.onnx").field == "onnx file"


def test_invalid_json_refused(identity_student: Path) -> None:
    identity_student.with_suffix(".json").write_text("{not json")
    assert refused(identity_student).field == "manifest"


def test_provider_selection(identity_student: Path) -> None:
    model = load_model(identity_student, provider="auto")
    assert model.providers[-1] == "CPUExecutionProvider"
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(ValueError, match="provider='cuda'.*Fix"):
            load_model(identity_student, provider="cuda")
    with pytest.raises(ValueError, match="unknown"):
        load_model(identity_student, provider="gpu")


def test_run_with_wrong_inputs_names_them(identity_student: Path) -> None:
    model = load_model(identity_student, provider="cpu")
    with pytest.raises(ValueError, match=r"missing \['prior'\], unexpected \['x'\]"):
        model.run(x=np.zeros((1, 8, 6), np.float32))


def test_run_into_rebinds_when_buffers_change(identity_student: Path) -> None:
    model = load_model(identity_student, provider="cpu")
    rng = np.random.default_rng(1)
    out = {"trajectory": np.zeros((3, 8, 6), np.float32)}
    x = rng.standard_normal((3, 8, 6)).astype(np.float32)
    model.run_into(out, prior=x)
    x[...] = rng.standard_normal(x.shape)  # same buffer, new content: the cached binding sees it
    model.run_into(out, prior=x)
    np.testing.assert_array_equal(out["trajectory"], x)
    y = rng.standard_normal((5, 8, 6)).astype(np.float32)  # new buffer and batch size
    out2 = {"trajectory": np.zeros((5, 8, 6), np.float32)}
    model.run_into(out2, prior=y)
    np.testing.assert_array_equal(out2["trajectory"], y)
    model.run_into(out, prior=x)
    np.testing.assert_array_equal(out["trajectory"], x)


def test_relative_column_needs_an_absolute_reference_of_its_dim(identity_student: Path) -> None:
    """A relative column's reference must reach the model absolute (a fixed source of another column) and
    match its dim: else the planner could not add it back."""
    edit_manifest(identity_student, relative=[{"column": "ee_position", "source": "ee_position"}])
    assert refused(identity_student).field == "relative.0.source"        # its only column is itself
    edit_manifest(identity_student, relative=[{"column": "ee_position", "source": "goal"}])
    load_model(identity_student, provider="cpu")                          # goal (3) is absolute: accepted
    edit_manifest(identity_student, relative=[{"column": "velocity", "source": "goal"}])
    assert refused(identity_student).field == "relative.0.column"
