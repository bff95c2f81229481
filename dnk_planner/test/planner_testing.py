"""Helpers for the planner-core tests: tiny real ONNX models written with onnx.helper.

A uniquely named module (not conftest) so `from planner_testing import ...` cannot pick
up another package's conftest when the whole workspace is tested in one run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dnk_planner.core.manifest import (
    ActionSpec, ColumnSpec, FixedSpec, ModelManifest, NormalizerSpec, TensorSpec, sha256_file,
)

onnx = pytest.importorskip("onnx")  # writing models needs onnx (training/dev dependency)
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

OPSET = 17


def save_graph(path: Path, nodes, inputs, outputs, initializers=()) -> Path:
    graph = helper.make_graph(nodes, path.stem, inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def arm_manifest(path: Path, horizon: int, **overrides) -> ModelManifest:
    """Manifest for an arm student (ee_position, goal) matching the file at `path`."""
    d = 6
    fields = dict(
        format_version=1, model_id="test-student", role="student", task="arm", horizon=horizon,
        columns=[ColumnSpec(name="ee_position", dim=3), ColumnSpec(name="goal", dim=3)],
        fixed=[FixedSpec(column="ee_position", rows="first", source="ee_position"),
               FixedSpec(column="goal", rows="all", source="goal")],
        action=ActionSpec(column="ee_position", row=1),
        normalizer=NormalizerSpec(mean=[0.3, 0.0, 0.4, 0.3, 0.0, 0.4], std=[0.2] * d),
        inputs=[TensorSpec(name="prior", shape=[None, horizon, d])],
        outputs=[TensorSpec(name="trajectory", shape=[None, horizon, d])],
        opset=OPSET, onnx_sha256=sha256_file(path), provenance={"method": "test identity"},
    )
    fields.update(overrides)
    return ModelManifest(**fields)


def write_identity_student(path: Path, horizon: int = 8, dim: int = 6) -> Path:
    """A student whose output equals its prior: lets tests see exactly what the planner fed it."""
    return save_graph(
        path, [helper.make_node("Identity", ["prior"], ["trajectory"])],
        [helper.make_tensor_value_info("prior", TensorProto.FLOAT, ["batch", horizon, dim])],
        [helper.make_tensor_value_info("trajectory", TensorProto.FLOAT, ["batch", horizon, dim])],
    )


def write_linear_critic(path: Path, obs_dim: int, act_dim: int, w_obs: np.ndarray, w_act: np.ndarray) -> Path:
    """Q(obs, act) = obs @ w_obs + act @ w_act: a real ONNX critic with a known argmax."""
    nodes = [
        helper.make_node("MatMul", ["obs", "w_obs"], ["qo"]),
        helper.make_node("MatMul", ["act", "w_act"], ["qa"]),
        helper.make_node("Add", ["qo", "qa"], ["q"]),
    ]
    inits = [numpy_helper.from_array(w_obs.astype(np.float32), "w_obs"),
             numpy_helper.from_array(w_act.astype(np.float32), "w_act")]
    return save_graph(
        path, nodes,
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["batch", obs_dim]),
         helper.make_tensor_value_info("act", TensorProto.FLOAT, ["batch", act_dim])],
        [helper.make_tensor_value_info("q", TensorProto.FLOAT, ["batch"])], inits,
    )
