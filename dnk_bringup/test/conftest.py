"""Fixtures for real-DDS tests: a private ROS domain, child processes that always die, and a
spinning rclpy node in the test process.

Several people run tests on one machine at once, so every test gets its own ROS_DOMAIN_ID
(from pid, time and a counter) and discovery is limited to localhost; children inherit both.
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


@pytest.fixture
def ros_domain(monkeypatch: pytest.MonkeyPatch) -> int:
    """A ROS_DOMAIN_ID in 1..100 for this test, set in os.environ (children inherit it)."""
    domain = (os.getpid() * 7 + int(time.time() * 1000) + next(_counter) * 13) % 100 + 1
    monkeypatch.setenv("ROS_DOMAIN_ID", str(domain))
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    return domain


@pytest.fixture
def spawn(ros_domain: int, tmp_path: Path) -> Iterator[Spawner]:
    spawner = Spawner(tmp_path)
    try:
        yield spawner
    finally:
        spawner.close()


@pytest.fixture
def probe(ros_domain: int) -> Iterator[Probe]:
    p = Probe(ros_domain)
    try:
        yield p
    finally:
        p.close()
