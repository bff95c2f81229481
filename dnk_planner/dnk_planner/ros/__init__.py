"""The rclpy front end of the planner core: node, controller bridge, parameters, client, topics."""
