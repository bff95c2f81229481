"""Launch pieces shared by dnk_gen3/dnk_sim/dnk_replay.launch.py (full ROS 2 install only).

Imports `launch` and `launch_ros`, which pip-installed ROS 2 lacks: only launch files import
this module. The planner is a lifecycle node; launching it means starting the process, then
emitting `configure` and, once it reaches `inactive`, `activate` - the standard launch_ros
lifecycle pattern, so a configure failure (bad model) leaves the node unconfigured and visible.
"""
from __future__ import annotations

from launch import LaunchContext
from launch.actions import DeclareLaunchArgument, EmitEvent, LogInfo, RegisterEventHandler
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from launch_ros.substitutions import FindPackageShare
from lifecycle_msgs.msg import Transition

from dnk_bringup.paths import model_file

CONTROLLER_MODES = ("pose", "twist", "joint_trajectory")
POLICIES = ("student", "student-int8", "teacher")


def planner_arguments(default_mode: str) -> list[DeclareLaunchArgument]:
    """Launch arguments every DNK launch file takes for the planner."""
    return [
        DeclareLaunchArgument("policy", default_value="student", choices=list(POLICIES),
                              description="Shipped model to run: student (the distilled FDK, one step), student-int8 "
                              "(its INT8 copy: CPU onnxruntime, ~2x faster ONNX call) or teacher (its 30-step DDIM "
                              "sampler, same planner); model_path overrides it"),
        DeclareLaunchArgument("model_path", default_value="",
                              description="Arm model .onnx (manifest .json beside it); '' = the policy's shipped model"),
        DeclareLaunchArgument(
            "params_file", default_value=PathJoinSubstitution([FindPackageShare("dnk_bringup"), "config", "planner.yaml"]),
            description="Planner parameters (node name dnk_planner)"),
        DeclareLaunchArgument("controller_mode", default_value=default_mode, choices=list(CONTROLLER_MODES),
                              description="What the planner commands: pose | twist | joint_trajectory"),
        DeclareLaunchArgument("provider", default_value="",
                              description="onnxruntime provider auto|cpu|cuda|tensorrt ('' = params_file)"),
        DeclareLaunchArgument("autostart", default_value="true",
                              description="Configure and activate the planner lifecycle node at start"),
    ]


def planner_actions(context: LaunchContext, use_sim_time: bool = False) -> list:
    """The planner lifecycle node plus the events that configure and activate it (OpaqueFunction);
    `use_sim_time` for a replay that publishes /clock."""
    arg = lambda name: LaunchConfiguration(name).perform(context)  # noqa: E731
    overrides: dict[str, str | bool] = {"controller_mode": arg("controller_mode")}
    if use_sim_time:
        overrides["use_sim_time"] = True
    overrides["model_path"] = arg("model_path") or str(model_file(f"arm-{arg('policy')}.onnx"))
    if arg("provider"):  # '' keeps the params file's value (an empty override would erase it)
        overrides["provider"] = arg("provider")
    planner = LifecycleNode(
        package="dnk_planner", executable="planner_node", name="dnk_planner", namespace="",
        output="screen", parameters=[arg("params_file"), overrides])
    actions = [planner]
    if arg("autostart").lower() in ("true", "1", "yes"):
        activate = EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(planner),
                                               transition_id=Transition.TRANSITION_ACTIVATE))
        actions += [
            RegisterEventHandler(OnStateTransition(
                target_lifecycle_node=planner, start_state="configuring", goal_state="inactive",
                entities=[LogInfo(msg="dnk_planner configured; activating"), activate])),
            EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(planner),
                                        transition_id=Transition.TRANSITION_CONFIGURE)),
        ]
    return actions
