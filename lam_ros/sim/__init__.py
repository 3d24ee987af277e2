"""PyBullet grasping tasks as gymnasium environments, and a scripted expert (no ROS, no torch)."""

from typing import Any

import gymnasium as gym
from lam_ros.description import get_task, TASK_NAMES, TASKS
from lam_ros.sim.config import CameraConfig, TaskConfig
from lam_ros.sim.env import GraspEnv
from lam_ros.sim.expert import DEFAULT_NOISE_STD, evaluate_expert, ExpertConfig, ScriptedExpert
from lam_ros.sim.kinematics import ArmKinematics, PandaKinematics
from lam_ros.sim.robot import ALL_JOINT_NAMES, JOINT_NAMES

ENV_IDS = {name: task.env_id for name, task in TASKS.items()}
"""Gymnasium ID of each task."""

for _task, _env_id in ENV_IDS.items():
    if _env_id not in gym.registry:
        gym.register(id=_env_id, entry_point='lam_ros.sim.env:GraspEnv', kwargs={'task': _task})


def make_env(task: str, **overrides: Any) -> GraspEnv:
    """Create a ``GraspEnv`` for ``task``; ``render_mode`` and TaskConfig fields may be given."""
    get_task(task)
    render_mode = overrides.pop('render_mode', None)
    return GraspEnv(task=task, render_mode=render_mode, **overrides)


__all__ = ['ALL_JOINT_NAMES', 'ArmKinematics', 'CameraConfig', 'DEFAULT_NOISE_STD', 'ENV_IDS',
           'ExpertConfig', 'GraspEnv', 'JOINT_NAMES', 'PandaKinematics', 'ScriptedExpert',
           'TASK_NAMES', 'TaskConfig', 'evaluate_expert', 'make_env']
