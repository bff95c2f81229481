"""The other process of test_msgs_over_dds.py: a tiny SetGoal server and ObstacleArray echo.

Serves /dnk/set_goal with the contract's checks (frame, finite values, tolerance in (0, 0.5])
and republishes every /dnk/obstacles message unchanged on /dnk/obstacles_echo, so the test
process sees dnk_msgs cross DDS in both directions. Exits 0 on SIGINT.
"""
from __future__ import annotations

import math

import rclpy
from dnk_msgs.msg import ObstacleArray
from dnk_msgs.srv import SetGoal
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

BASE_FRAME = "base_link"


class MsgsPeer(Node):
    def __init__(self) -> None:
        super().__init__("dnk_msgs_peer")
        self.echo = self.create_publisher(ObstacleArray, "/dnk/obstacles_echo", 10)
        self.create_subscription(ObstacleArray, "/dnk/obstacles", self.echo.publish, 10)
        self.create_service(SetGoal, "/dnk/set_goal", self.on_set_goal)

    def on_set_goal(self, request: SetGoal.Request, response: SetGoal.Response) -> SetGoal.Response:
        p = request.goal.pose.position
        if request.goal.header.frame_id != BASE_FRAME:
            response.accepted, response.message = False, f"frame '{request.goal.header.frame_id}' is not {BASE_FRAME}"
        elif not all(math.isfinite(v) for v in (p.x, p.y, p.z)):
            response.accepted, response.message = False, "non-finite goal position"
        elif not 0.0 < request.position_tolerance <= 0.5:
            response.accepted, response.message = False, f"position_tolerance {request.position_tolerance} not in (0, 0.5]"
        else:
            response.accepted, response.message = True, "ok"
        return response


def main() -> None:
    rclpy.init()
    node = MsgsPeer()
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
