"""Tests for the task objects."""

from lam_ros.description import get_task, LIFT_AND_HOLD, PLACE_IN_ZONE, TASK_NAMES, TASKS
from lam_ros.sim.config import TaskConfig
import pytest


def test_each_task_answers_what_the_package_asks():
    lift, place = get_task('lift'), get_task('pick_place')
    assert TASK_NAMES == ('lift', 'pick_place')
    assert not lift.has_goal and place.has_goal
    assert lift.success_rule == LIFT_AND_HOLD and place.success_rule == PLACE_IN_ZONE
    assert lift.pose_keys == ('object_pose',)
    assert place.observation_keys == ('joint_pos', 'joint_vel', 'gripper_width', 'ee_pose',
                                      'object_pose', 'goal_pose')
    assert get_task(place) is place


def test_success_parameters_are_task_config_fields():
    cfg = TaskConfig()
    for task in TASKS.values():
        for name in task.success_params:
            assert isinstance(getattr(cfg, name), float), name


def test_default_episode_length_comes_from_the_task():
    assert TaskConfig(task='lift').max_episode_steps == get_task('lift').default_max_episode_steps
    assert TaskConfig(task='pick_place').max_episode_steps == 250


def test_unknown_task_names_the_known_ones():
    with pytest.raises(ValueError, match="'lift', 'pick_place'"):
        get_task('stack')
