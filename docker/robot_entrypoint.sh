#!/bin/bash
# Sources ROS 2 and the DNK workspace, then starts the arm + planner; arguments are launch args.
set -e
# shellcheck disable=SC1091
. /opt/ros/jazzy/setup.bash
# shellcheck disable=SC1091
. /dnk_ws/install/setup.bash
exec ros2 launch dnk_bringup dnk_gen3.launch.py "$@"
