"""DNK runtime.

- `dnk_planner.core`: the planner (numpy + onnxruntime, no ROS, no torch), shared by every
  front end: the ROS node, the MuJoCo evaluation bridge and bag replay.
- `dnk_planner.ros`: the rclpy front end (lifecycle node, controller bridge, parameters,
  client, topic names).
- `dnk_planner.testing`: ONNX model builders for tests, benchmarks and the demo; not product.
"""
