"""Fixtures for the planner-core tests (helpers live in planner_testing.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dnk_planner.core.manifest import save_manifest


@pytest.fixture
def identity_student(tmp_path: Path) -> Path:
    """An arm-layout identity student (H=8, D=6) with its manifest, in tmp_path."""
    from planner_testing import arm_manifest, write_identity_student  # skips the test without onnx

    path = write_identity_student(tmp_path / "student.onnx")
    save_manifest(arm_manifest(path, 8), path)
    return path
