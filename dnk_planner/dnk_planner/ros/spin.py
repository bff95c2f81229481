"""Spin a node until Ctrl-C or an external shutdown, then tear it down: every DNK executable's end."""
from __future__ import annotations

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node


def spin_until_shutdown(node: Node) -> None:
    """SIGINT / `rclpy.shutdown` from elsewhere end the spin quietly; the node is always destroyed."""
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
