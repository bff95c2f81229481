"""DNK runtime: planner core (numpy + onnxruntime) and its ROS 2 front end."""
