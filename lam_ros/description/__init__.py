"""
What the package knows about the arm and the tasks, read by every other part.

``load_robot`` returns a :class:`RobotDescription` (joints, gripper, URDF, frames, topics,
control rate, home pose) from ``config/robots/<name>.yaml``; ``get_task`` returns a
:class:`Task` (observation keys, goal, success rule, episode length). No ROS, torch or
PyBullet here.
"""

from lam_ros.description.camera import (
    camera_name, CameraConfig, image_channels, image_key, image_kind, pinhole_intrinsics)
from lam_ros.description.robot import (
    DEFAULT_ROBOT, Frames, GripperSpec, load_robot, RobotDescription, TOPIC_TYPES, Topics,
    Workspace)
from lam_ros.description.task import (
    get_task, LIFT_AND_HOLD, PLACE_IN_ZONE, Task, TASK_NAMES, TASKS)

__all__ = ['camera_name', 'CameraConfig', 'DEFAULT_ROBOT', 'Frames', 'get_task', 'GripperSpec',
           'image_channels', 'image_key', 'image_kind', 'LIFT_AND_HOLD', 'load_robot',
           'pinhole_intrinsics', 'PLACE_IN_ZONE', 'RobotDescription', 'Task', 'TASK_NAMES',
           'TASKS', 'TOPIC_TYPES', 'Topics', 'Workspace']
