"""
Reading rosbag2 episodes of any robot, and writing or replaying one.

``source`` finds the episodes of a recorder directory, a folder of bags or one bag and holds
the ``TopicMapping`` of topics and joints; ``reader`` reads an episode into time series;
``frames`` brings poses into the robot base frame (declared transforms or ``/tf_static``);
``writer`` writes a bag (MCAP or sqlite3) in one call; ``replay`` plans the replay of an
episode's commands.
"""
