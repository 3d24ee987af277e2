"""
The tasks: one object per task that answers what the rest of the package asks of it.

What a policy observes, whether the task has a goal pose, how success is decided (the rule
and the ``TaskConfig`` fields it reads) and how long an episode lasts by default: code asks
the task object instead of comparing task names.
"""

from dataclasses import dataclass
from typing import Dict, Tuple, Union

STATE_KEYS: Tuple[str, ...] = ('joint_pos', 'joint_vel', 'gripper_width', 'ee_pose')
"""Observation keys that come from the robot itself, for every task."""

LIFT_AND_HOLD = 'lift_and_hold'
"""Success rule: the object is grasped and held ``lift_height_m`` up for ``lift_hold_s``."""

PLACE_IN_ZONE = 'place_in_zone'
"""Success rule: the object rests inside the goal zone and the gripper has let go."""


@dataclass(frozen=True)
class Task:
    """One manipulation task."""

    name: str
    """Name used on command lines, in ROS parameters, dataset.yaml and checkpoints."""
    env_id: str
    """Gymnasium ID registered on ``import lam_ros.sim``."""
    has_goal: bool
    """Whether the task has a goal pose (observed as ``goal_pose``, published on a topic)."""
    success_rule: str
    """How success is decided: ``LIFT_AND_HOLD`` or ``PLACE_IN_ZONE``."""
    success_params: Tuple[str, ...]
    """The ``TaskConfig`` fields the success rule reads (their values live there)."""
    default_max_episode_steps: int
    """Episode length in policy steps unless ``TaskConfig.max_episode_steps`` says otherwise."""

    @property
    def pose_keys(self) -> Tuple[str, ...]:
        """Pose observations of the scene: the object, and the goal when there is one."""
        return ('object_pose',) + (('goal_pose',) if self.has_goal else ())

    @property
    def observation_keys(self) -> Tuple[str, ...]:
        """Vector observation keys of the task (camera keys come on top when a camera is on)."""
        return STATE_KEYS + self.pose_keys


TASKS: Dict[str, Task] = {t.name: t for t in (
    Task('lift', 'lam_ros/Lift-v0', has_goal=False, success_rule=LIFT_AND_HOLD,
         success_params=('lift_height_m', 'lift_hold_s'), default_max_episode_steps=150),
    Task('pick_place', 'lam_ros/PickPlace-v0', has_goal=True, success_rule=PLACE_IN_ZONE,
         success_params=('goal_radius_m', 'rest_speed_m_s', 'open_gripper_width_m'),
         default_max_episode_steps=250),
)}
"""Every task, by name."""

TASK_NAMES: Tuple[str, ...] = tuple(TASKS)
"""Task names accepted everywhere a task is chosen."""


def get_task(task: Union[str, Task]) -> Task:
    """Return the task called ``task`` (a Task passes through); unknown names raise ValueError."""
    if isinstance(task, Task):
        return task
    try:
        return TASKS[task]
    except (KeyError, TypeError):
        raise ValueError(f'unknown task {task!r}; expected one of {TASK_NAMES}') from None
