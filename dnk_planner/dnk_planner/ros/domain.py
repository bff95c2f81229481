"""A ROS_DOMAIN_ID per run, so parallel runs on one machine (tests, demos, benchmarks) never cross.

No ROS imports: call it before rclpy is imported, since the middleware reads the variable then.
"""
from __future__ import annotations

import os
import time


def default_domain_id() -> str:
    """The caller's ROS_DOMAIN_ID, or one in 1..100 from the pid and the clock (set in os.environ)."""
    return os.environ.setdefault("ROS_DOMAIN_ID", str((os.getpid() + int(time.time())) % 100 + 1))
