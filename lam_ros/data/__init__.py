"""
Demonstrations on disk, no ROS runtime: recording them, reading bags, building datasets.

- ``recording/``: write episodes into a dataset directory (one rosbag2 MCAP bag per episode
  plus ``dataset.yaml``), recover it after a crash, and record scripted-expert demos.
- ``bags/``: find and read the episodes of any robot's bags through a topic mapping, write a
  bag in one call, and plan the replay of an episode's commands.
- ``dataset/``: resample bags into training arrays at the policy rate, with statistics, a
  cache file, training windows and reports.
- ``messages``: the ROS message types and builders all three share.
"""
