"""
Recording episodes into a dataset directory (rosbag2 MCAP bags plus ``dataset.yaml``).

``recorder.DatasetRecorder`` writes episodes; ``config.RecorderConfig`` configures a
session; ``index`` reads and atomically writes ``dataset.yaml``; ``recover`` and ``repair``
restore a directory after a crash; ``checks`` flags suspect episodes; ``timing`` decides the
log time of every message and which messages an episode holds; ``audit`` checks a recorded
episode is in step; ``demos`` records scripted-expert episodes from the sim.
"""
