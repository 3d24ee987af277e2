"""lam_ros: record demonstrations on a ROS 2 arm, learn a policy from them, evaluate it."""

__version__ = '0.1.0'
