"""ROS-free teleoperation core: twist integration, keyboard and joystick maps, leader arms."""
