"""Recording episodes to rosbag2 (MCAP) files and building training arrays from bags (no ROS)."""
