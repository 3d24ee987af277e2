"""Tests for RecorderConfig: empty settings come from the robot description."""

from pathlib import Path

from lam_ros.data import messages
from lam_ros.data.recording.config import RecorderConfig
from lam_ros.description import load_robot
from lam_ros.description.robot import robot_yaml_path
import pytest
import yaml


def test_empty_settings_are_the_robot_descriptions():
    panda = load_robot('panda')
    cfg = RecorderConfig().resolved()
    assert cfg.robot == 'panda' and tuple(cfg.joint_names) == panda.joint_names
    assert cfg.topics == ['/joint_states', '/object_pose', '/goal_pose', '/task_success']
    assert cfg.topic_types[0] == messages.JOINT_STATE
    assert cfg.command_topic == panda.topics.command
    assert cfg.success_topic == panda.topics.success
    assert cfg.control_rate_hz == panda.control_rate_hz
    trajectory = RecorderConfig(command_type=messages.JOINT_TRAJECTORY).resolved()
    assert trajectory.command_topic == panda.topics.trajectory_command
    kept = RecorderConfig(control_rate_hz=15.0, command_topic='/arm/cmd').resolved()
    assert (kept.control_rate_hz, kept.command_topic) == (15.0, '/arm/cmd')


def test_another_arm_changes_every_default(tmp_path: Path):
    data = yaml.safe_load(Path(robot_yaml_path('panda')).read_text())
    data.update(name='arm2', joint_names=['a1', 'a2', 'grip'],
                gripper={'joint': 'grip', 'open_m': 0.05, 'closed_m': 0.0},
                home_pose=[0.0, 0.0, 0.0], control_rate_hz=50.0,
                topics=dict(data['topics'], joint_state='/arm2/joint_states',
                            command='/arm2/commands'))
    (tmp_path / 'arm2.yaml').write_text(yaml.safe_dump(data))
    cfg = RecorderConfig(robot=str(tmp_path / 'arm2.yaml')).resolved()
    assert cfg.robot == 'arm2' and cfg.joint_names == ['a1', 'a2', 'grip']
    assert cfg.topics[0] == '/arm2/joint_states' and cfg.command_topic == '/arm2/commands'
    assert cfg.control_rate_hz == 50.0


def test_bad_values_are_rejected():
    with pytest.raises(ValueError, match='same length'):
        RecorderConfig(topics=['/a'])
    with pytest.raises(ValueError, match='control_rate_hz'):
        RecorderConfig(control_rate_hz=-1.0)
