"""NodeConfig -> the core's configs: the prior temperature comes from the model unless the parameter sets it."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from dnk_planner.core.config import PlannerConfig
from dnk_planner.core.manifest import read_manifest
from dnk_planner.ros.node_config import NodeConfig
from dnk_planner.testing.models import ARM_PRIMITIVE_TEMPERATURE, build_arm_primitive_model


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "arm.onnx"
    build_arm_primitive_model(path)
    return read_manifest(path.with_suffix(".json"))


def test_default_temperature_is_the_models(manifest):
    assert manifest.prior_temperature == ARM_PRIMITIVE_TEMPERATURE
    assert NodeConfig(model_path="m.onnx").planner_config(manifest).temperature == ARM_PRIMITIVE_TEMPERATURE
    other = manifest.model_copy(update={"prior_temperature": 1.25})
    assert NodeConfig(model_path="m.onnx").planner_config(other).temperature == 1.25


def test_a_model_without_one_runs_at_the_cores_default(manifest):
    bare = manifest.model_copy(update={"prior_temperature": None})
    assert (NodeConfig(model_path="m.onnx").planner_config(bare).temperature
            == PlannerConfig.model_fields["temperature"].default)


def test_the_parameter_overrides_the_model(manifest):
    assert NodeConfig(model_path="m.onnx", temperature=0.0).planner_config(manifest).temperature == 0.0
    assert NodeConfig(model_path="m.onnx", temperature=1.5).planner_config(manifest).temperature == 1.5
    with pytest.raises(ValidationError, match="temperature"):
        NodeConfig(model_path="m.onnx", temperature=-2.0)
