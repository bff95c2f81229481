"""Fixtures for real-DDS tests: a private ROS domain, child processes that always die, and a
spinning rclpy node in the test process.

Several people run tests on one machine at once, so every test gets its own ROS_DOMAIN_ID
(from pid, time and a counter; one per test module, so a module's
fixtures can share processes) and discovery is limited to localhost; children inherit both.
"""
from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bringup_testing import Probe, Spawner

_counter = itertools.count()


@pytest.fixture(scope="module")
def ros_domain() -> Iterator[int]:
    """A ROS_DOMAIN_ID in 1..100 for this test module, set in os.environ (children inherit it)."""
    domain = (os.getpid() * 7 + int(time.time() * 1000) + next(_counter) * 13) % 100 + 1
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ROS_DOMAIN_ID", str(domain))
        mp.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
        yield domain


@pytest.fixture
def spawn(ros_domain: int, tmp_path: Path) -> Iterator[Spawner]:
    spawner = Spawner(tmp_path)
    try:
        yield spawner
    finally:
        spawner.close()


@pytest.fixture(scope="module")
def arm_model(tmp_path_factory) -> Path:
    """The analytic arm model (H = 32) with its manifest, once per test module."""
    pytest.importorskip("onnx")
    from dnk_planner.testing.models import build_arm_primitive_model

    path = tmp_path_factory.mktemp("model") / "arm.onnx"
    build_arm_primitive_model(path, horizon=32)
    return path


@pytest.fixture(scope="module")
def probe(ros_domain: int) -> Iterator[Probe]:
    p = Probe(ros_domain)
    try:
        yield p
    finally:
        p.close()
