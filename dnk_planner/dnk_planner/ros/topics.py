"""Topic and service names of the planner's ROS API and of ros2_kortex (docs/interfaces.md).

The one place they are spelled: node, client, simulator, recorder and launch files import
them. Kept free of ROS imports so launch files can use them on any install.
"""
JOINT_STATES = "/joint_states"
JOINT_TRAJECTORY = "/joint_trajectory_controller/joint_trajectory"
TWIST = "/twist_controller/commands"
TARGET_POSE = "/dnk/target_pose"
STATUS = "/dnk/status"
OBSTACLES = "/dnk/obstacles"
GOAL_POSE = "/goal_pose"
SET_GOAL = "/dnk/set_goal"
CANDIDATES = "/dnk/candidates"
DIAGNOSTICS = "/diagnostics"
SIM_CONTACTS = "/sim_gen3/contacts"  # dnk_msgs/ArmContacts from the MuJoCo sim
DECISION = "/dnk/decision"  # dnk_msgs/PlannerDecision: each decision with its inputs (dnk-replay)

# What a planner run needs for offline analysis and replay.
RECORD_DEFAULT = [JOINT_STATES, TARGET_POSE, STATUS, OBSTACLES, GOAL_POSE, DECISION]
# What the planner subscribes to: replaying these re-runs the planner on recorded inputs.
PLANNER_INPUTS = [JOINT_STATES, OBSTACLES, GOAL_POSE]
