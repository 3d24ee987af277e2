"""Imitation learning, RL fine-tuning and evaluation in PyBullet (no ROS)."""
