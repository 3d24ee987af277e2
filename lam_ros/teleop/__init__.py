"""ROS-free teleoperation core: operator sources, the teleop session, hands-free episodes."""
