"""PyBullet grasping tasks as gymnasium environments, and a scripted expert (no ROS, no torch)."""
