# Robot image: ROS 2 Jazzy + ros2_kortex + moveit_py + the DNK runtime (no torch).
#   docker build -f docker/robot.Dockerfile -t dnk-robot .
#   docker run --rm -it --network host --gpus all dnk-robot robot_ip:=192.168.1.10
#       (the shipped distilled student; policy:=teacher, or -v $PWD/models:/models ... model_path:=/models/x.onnx)
FROM ros:jazzy-ros-base

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# ros2_kortex (driver, controllers, mock hardware) and moveit_py from the ROS apt repository.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        ros-jazzy-kortex-bringup \
        ros-jazzy-kortex-description \
        ros-jazzy-moveit-py \
        ros-jazzy-rosbag2-storage-mcap \
        ros-jazzy-diagnostic-msgs \
        ros-jazzy-visualization-msgs \
        python3-pip \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /dnk_ws
COPY requirements/robot.txt requirements/robot.txt
# Same pins as requirements/runtime.txt, with onnxruntime-gpu in place of onnxruntime.
RUN pip3 install --no-cache-dir --break-system-packages -r requirements/robot.txt

COPY dnk_msgs src/dnk_msgs
COPY dnk_planner src/dnk_planner
COPY dnk_bringup src/dnk_bringup
COPY colcon.meta colcon.meta
# dnk_training (torch) is not part of the robot image.
RUN . /opt/ros/jazzy/setup.bash \
    && colcon build --packages-skip dnk_training --event-handlers console_cohesion+ \
    && . install/setup.bash \
    && python3 -c "from dnk_planner.core.arm_geometry import compile_kernels; compile_kernels()"
# ^ numba compiles the whole-arm kernels once into the image's cache, so no start pays for it

COPY docker/robot_entrypoint.sh /robot_entrypoint.sh
# `docker stop` sends this to `ros2 launch` (PID 1): launch 3.4 ignores SIGTERM and leaves its
# children running, SIGINT shuts every node down cleanly (and the recorder closes its bag).
STOPSIGNAL SIGINT
ENTRYPOINT ["/robot_entrypoint.sh"]
CMD ["use_fake_hardware:=true"]
