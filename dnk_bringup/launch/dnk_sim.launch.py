"""DNK without an arm: sim_gen3 + the planner lifecycle node, optionally recording an MCAP bag.

    ros2 launch dnk_bringup dnk_sim.launch.py model_path:=/models/arm.onnx record:=true

sim_gen3 speaks ros2_kortex's topics, so every controller_mode works. joint_trajectory is the
default, as on the robot: the arm follows the joint path the selector checked for the whole arm
(in pose mode sim_gen3 reaches each target through its own IK, which can move the elbow off it). record:=true starts bag_record on the planner's
topics (bag_tool:=ros2 uses `ros2 bag record -s mcap` instead, same bag format).
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from dnk_planner.ros.topics import RECORD_DEFAULT
from dnk_bringup.launch_common import planner_actions, planner_arguments


def _recorder(context):
    if LaunchConfiguration("record").perform(context).lower() not in ("true", "1", "yes"):
        return []
    output = LaunchConfiguration("bag_output").perform(context)
    if LaunchConfiguration("bag_tool").perform(context) == "ros2":
        cmd = ["ros2", "bag", "record", "-s", "mcap", *(["-o", output] if output else []), *RECORD_DEFAULT]
        return [ExecuteProcess(cmd=cmd, output="screen")]
    params = {"output": output} if output else {}
    return [Node(package="dnk_bringup", executable="bag_record", name="dnk_bag_record", output="screen",
                 parameters=[params])]


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        DeclareLaunchArgument(
            "sim_params_file",
            default_value=PathJoinSubstitution([FindPackageShare("dnk_bringup"), "config", "sim_gen3.yaml"]),
            description="sim_gen3 parameters"),
        DeclareLaunchArgument("record", default_value="false", description="Record an MCAP bag of the run"),
        DeclareLaunchArgument("bag_output", default_value="", description="Bag directory ('' = dnk_bag_<time>)"),
        DeclareLaunchArgument("bag_tool", default_value="bag_record", choices=["bag_record", "ros2"],
                              description="bag_record (dnk_bringup, rosbags) or ros2 (ros2 bag record -s mcap)"),
        *planner_arguments(default_mode="joint_trajectory"),
        # Only the planner's controller_mode input is live in the sim, as with one active controller.
        Node(package="dnk_bringup", executable="sim_gen3", name="sim_gen3", output="screen",
             parameters=[LaunchConfiguration("sim_params_file"),
                         {"command_mode": LaunchConfiguration("controller_mode")}]),
        OpaqueFunction(function=planner_actions),
        OpaqueFunction(function=_recorder),
    ])
