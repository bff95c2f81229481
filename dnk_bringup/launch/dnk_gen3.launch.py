"""DNK on a Kinova Gen3: ros2_kortex driver + the planner lifecycle node (full ROS 2 install).

    ros2 launch dnk_bringup dnk_gen3.launch.py robot_ip:=192.168.1.10 model_path:=/models/arm.onnx
    ros2 launch dnk_bringup dnk_gen3.launch.py robot_ip:=192.168.1.10 controller_mode:=twist model_path:=...
    ros2 launch dnk_bringup dnk_gen3.launch.py use_fake_hardware:=true controller_mode:=joint_trajectory

Includes kortex_bringup/gen3.launch.py with the ros2_kortex controller that matches
`controller_mode` (twist -> twist_controller, joint_trajectory -> joint_trajectory_controller;
pose publishes only /dnk/target_pose, so the driver keeps joint_trajectory_controller and a
Cartesian pose consumer must be supplied separately), unless `robot_controller` names one.
The planner is configured and activated through lifecycle events once it is up.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, LogInfo, OpaqueFunction
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.substitutions import FindPackageShare

from dnk_bringup.launch_common import planner_actions, planner_arguments

CONTROLLER_FOR_MODE = {
    "twist": "twist_controller",
    "joint_trajectory": "joint_trajectory_controller",
    "pose": "joint_trajectory_controller",
}


def _driver(context):
    mode = LaunchConfiguration("controller_mode").perform(context)
    controller = LaunchConfiguration("robot_controller").perform(context) or CONTROLLER_FOR_MODE[mode]
    fake = LaunchConfiguration("use_fake_hardware").perform(context).lower() in ("true", "1")
    if fake and controller == "twist_controller":
        raise RuntimeError("dnk_gen3: controller_mode:=twist needs the real arm: ros2_kortex mock hardware has no "
                           "twist interface. Use controller_mode:=joint_trajectory with use_fake_hardware:=true.")
    if context.launch_configurations.get("joint_prefix", ""):
        raise RuntimeError("dnk_gen3: kortex_bringup's gen3.launch.py does not take a joint prefix, so the driver "
                           "would publish unprefixed joints; leave joint_prefix empty (or launch a prefixed "
                           "description yourself and start the planner with dnk_sim-style arguments)")
    # kortex_control.launch.py spawns `robot_controller` active and `robot_pos_controller` inactive
    # (default twist_controller): name the other one explicitly so each is spawned exactly once.
    other = "joint_trajectory_controller" if controller == "twist_controller" else "twist_controller"
    actions = [LogInfo(msg=f"dnk_gen3: controller_mode={mode}, ros2_kortex robot_controller={controller}, "
                           f"robot_pos_controller={other}")]
    if mode == "pose":
        actions.append(LogInfo(msg="dnk_gen3: controller_mode=pose only publishes /dnk/target_pose; "
                                   "ros2_kortex has no Cartesian pose controller, so the arm will not move "
                                   "unless something consumes that topic"))
    actions.append(IncludeLaunchDescription(
        PythonLaunchDescriptionSource(
            PathJoinSubstitution([FindPackageShare("kortex_bringup"), "launch", "gen3.launch.py"])),
        launch_arguments={
            "robot_ip": LaunchConfiguration("robot_ip"),
            "use_fake_hardware": LaunchConfiguration("use_fake_hardware"),
            "robot_controller": controller,
            "robot_pos_controller": other,
            "launch_rviz": LaunchConfiguration("launch_rviz"),
        }.items()))
    return actions


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        DeclareLaunchArgument("robot_ip", default_value="192.168.1.10", description="Gen3 IP address"),
        DeclareLaunchArgument("use_fake_hardware", default_value="false",
                              description="ros2_kortex mock hardware (joint_trajectory_controller only)"),
        DeclareLaunchArgument("robot_controller", default_value="",
                              description="ros2_kortex controller to start ('' = from controller_mode)"),
        DeclareLaunchArgument("launch_rviz", default_value="false", description="Start RViz with the driver"),
        *planner_arguments(default_mode="joint_trajectory"),
        OpaqueFunction(function=_driver),
        OpaqueFunction(function=planner_actions),
    ])
