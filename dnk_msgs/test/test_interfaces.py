"""The generated dnk_msgs interfaces carry the constants and fields the stack relies on."""
import math

from dnk_msgs.msg import Obstacle, ObstacleArray, PlannerStatus
from dnk_msgs.srv import SetGoal
from rclpy.serialization import deserialize_message, serialize_message


def test_constants_are_distinct() -> None:
    states = {PlannerStatus.IDLE, PlannerStatus.ACTIVE, PlannerStatus.HOLDING,
              PlannerStatus.GOAL_REACHED, PlannerStatus.FAULT}
    assert len(states) == 5
    assert Obstacle.SPHERE != Obstacle.BOX


def test_obstacle_array_round_trips_through_cdr() -> None:
    msg = ObstacleArray()
    msg.header.frame_id = "base_link"
    box = Obstacle(id="table", shape=Obstacle.BOX, dimensions=[1.0, 0.6, 0.05])
    box.pose.position.z = -0.03
    msg.obstacles = [Obstacle(id="ball", shape=Obstacle.SPHERE, dimensions=[0.1]), box]
    back = deserialize_message(serialize_message(msg), ObstacleArray)
    assert back.header.frame_id == "base_link"
    assert [o.id for o in back.obstacles] == ["ball", "table"]
    assert list(back.obstacles[1].dimensions) == [1.0, 0.6, 0.05]
    assert math.isclose(back.obstacles[1].pose.position.z, -0.03)


def test_status_and_service_fields() -> None:
    status = PlannerStatus(state=PlannerStatus.HOLDING, deadline_misses=3, candidates=64,
                           p95_latency_ms=1.5, model_id="fdk:abc", message="stale joint states")
    back = deserialize_message(serialize_message(status), PlannerStatus)
    assert (back.state, back.deadline_misses, back.candidates) == (PlannerStatus.HOLDING, 3, 64)
    req = SetGoal.Request(position_tolerance=0.01)
    req.goal.header.frame_id = "base_link"
    assert req.goal.pose.orientation.w == 1.0
    assert SetGoal.Response(accepted=False, message="unreachable").message == "unreachable"


def test_arm_contacts_and_goal_orientation_fields() -> None:
    from dnk_msgs.msg import ArmContacts

    report = ArmContacts(contact_steps=3, contacts=["bracelet_link:ball"], min_link_distance=-0.002,
                         real_time_factor=0.99, obstacles_not_simulated=1)
    back = deserialize_message(serialize_message(report), ArmContacts)
    assert (back.contact_steps, list(back.contacts), back.obstacles_not_simulated) == (3, ["bracelet_link:ball"], 1)
    assert math.isclose(back.min_link_distance, -0.002) and math.isclose(back.real_time_factor, 0.99)
    assert SetGoal.Request().track_orientation is False  # position-only goals by default
