"""Fixtures for the planner-core tests (helpers live in planner_testing.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dnk_planner.core.manifest import save_manifest


@pytest.fixture(scope="module")
def arm_model(tmp_path_factory) -> Path:
    """The analytic arm model (H = 32) with its manifest, once per test module."""
    from dnk_planner.testing.models import build_arm_primitive_model

    path = tmp_path_factory.mktemp("model") / "arm.onnx"
    build_arm_primitive_model(path, horizon=32)
    return path


@pytest.fixture(scope="module")
def client():
    """A PlannerClient (test-side node: plays the arm, drives the planner) for the module's DDS tests."""
    from dnk_planner.ros.client import PlannerClient  # rclpy only for the tests that use it

    c = PlannerClient()
    yield c
    c.close()


@pytest.fixture
def identity_student(tmp_path: Path) -> Path:
    """An arm-layout identity student (H=8, D=6) with its manifest, in tmp_path."""
    from planner_testing import arm_manifest, write_identity_student  # skips the test without onnx

    path = write_identity_student(tmp_path / "student.onnx")
    save_manifest(arm_manifest(path, 8), path)
    return path
