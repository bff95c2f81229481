"""Measured joint angles enter a model in the chart it was trained in (node.joint_chart_center)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dnk_planner.core.kinematics import HOME_POSITIONS, unwrap_near, wrap_to_pi
from dnk_planner.core.manifest import read_manifest
from dnk_planner.core.arm_context import joint_chart_center


def test_the_chart_is_the_q_columns_training_mean(arm_model: Path, tmp_path: Path) -> None:
    raw = json.loads(arm_model.with_suffix(".json").read_text())
    center = joint_chart_center(read_manifest(arm_model))
    np.testing.assert_array_equal(center, np.asarray(raw["normalizer"]["mean"][:7]))
    # a Home-centred model (joint_3 near pi): the driver's wrapped -3.0 rad is the model's 3.28 rad
    q = wrap_to_pi(np.array(HOME_POSITIONS) + 0.14)
    assert q[2] < 0
    np.testing.assert_allclose(unwrap_near(q, np.array(HOME_POSITIONS)), np.array(HOME_POSITIONS) + 0.14, atol=1e-12)
    # no q-sourced column: no chart, the measurement is used as it is
    raw["fixed"] = [f for f in raw["fixed"] if f["source"] != "q"]
    (tmp_path / "m.json").write_text(json.dumps(raw))
    assert joint_chart_center(read_manifest(tmp_path / "m.json")) is None
