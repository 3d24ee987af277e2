"""
Reading rosbag2 episodes of any robot, and writing or replaying one.

``source`` finds the episodes of a recorder directory, a folder of bags or one bag and holds
the ``TopicMapping`` of topics and joints; ``reader`` reads an episode into time series;
``writer`` writes a bag in one call; ``replay`` plans the replay of an episode's commands.
"""
