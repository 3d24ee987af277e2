"""Behaviour cloning of a policy and its closed-loop evaluation in PyBullet (no ROS)."""
