"""The planner core: numpy + onnxruntime + pydantic only.

Nothing here imports rclpy, ROS message packages or torch (test_core_isolation.py enforces
it), so the same code runs in the ROS node, the MuJoCo bridge and offline replay.
"""
from dnk_planner.core.planner import GENERATOR_ROLES, Context, Decision, Planner

__all__ = ["GENERATOR_ROLES", "Context", "Decision", "Planner"]
