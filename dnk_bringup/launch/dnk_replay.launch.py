"""Replay a recorded run into the planner: bag_replay + the planner lifecycle node.

    ros2 launch dnk_bringup dnk_replay.launch.py bag:=/data/dnk_bag_2026_01_01-12_00_00 \
        model_path:=/models/arm.onnx rate:=1.0

By default only the planner's inputs are replayed (/joint_states, /dnk/obstacles, /goal_pose),
so the live planner's /dnk/target_pose and /dnk/status can be compared with the recorded ones
(record them with dnk_sim.launch.py record:=true, or `ros2 bag record -s mcap`).
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from dnk_bringup.launch_common import planner_actions, planner_arguments
from dnk_planner.ros.topics import PLANNER_INPUTS


def _player(context):
    arg = lambda name: LaunchConfiguration(name).perform(context)  # noqa: E731
    arguments = [arg("bag"), "--rate", arg("rate"), "--delay", arg("delay"), "--clock",
                 "--wait-for-subscribers", "10.0", "--topics", *arg("topics").split()]
    return [Node(package="dnk_bringup", executable="bag_replay", name="dnk_bag_replay", output="screen",
                 arguments=arguments)]


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        DeclareLaunchArgument("bag", description="Bag directory to replay (with metadata.yaml)"),
        DeclareLaunchArgument("rate", default_value="1.0", description="Replay time scale (> 0)"),
        DeclareLaunchArgument("delay", default_value="2.0",
                              description="Seconds before the first message (planner configure/activate)"),
        DeclareLaunchArgument("topics", default_value=" ".join(PLANNER_INPUTS), description="Space-separated topics to replay"),
        *planner_arguments(default_mode="joint_trajectory"),
        # the recorded stamps are judged against the bag's time: the player publishes /clock
        OpaqueFunction(function=lambda context: planner_actions(context, use_sim_time=True)),
        OpaqueFunction(function=_player),
    ])
