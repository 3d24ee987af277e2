"""Tests for the robot description: the Panda YAML, another arm's YAML, and bad files."""

import os
import subprocess
import sys

from lam_ros.description import load_robot, RobotDescription
from lam_ros.description.robot import robot_yaml_path
import numpy as np
import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _write(path, **changes):
    with open(robot_yaml_path('panda')) as f:
        data = yaml.safe_load(f)
    for key, value in changes.items():
        if isinstance(value, dict) and key in data and not value.get('_replace'):
            data[key] = dict(data[key], **value)
        else:
            data[key] = {k: v for k, v in value.items() if k != '_replace'} \
                if isinstance(value, dict) else value
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_panda_description_follows_the_contract():
    robot = load_robot('panda')
    assert robot is load_robot()  # the default robot, read once
    assert robot.joint_names == tuple(f'panda_joint{i}' for i in range(1, 8)) + (
        'panda_finger_joint1',)
    assert robot.state_joint_names == robot.joint_names + ('panda_finger_joint2',)
    assert robot.arm_joint_names == robot.joint_names[:7]
    assert robot.gripper_index == 7 and robot.gripper.width_joints == (
        'panda_finger_joint1', 'panda_finger_joint2')
    assert (robot.frames.base, robot.frames.tool) == ('panda_link0', 'panda_grasptarget')
    assert robot.topics.joint_state == '/joint_states'
    assert robot.topics.command == '/forward_position_controller/commands'
    assert robot.control_rate_hz == 20.0
    limits = robot.joint_limits()
    assert limits.joint_names == robot.joint_names
    home = np.array(robot.home_pose)
    assert np.all(home >= limits.lower) and np.all(home <= limits.upper)
    assert os.path.isfile(robot.urdf_path())


def test_another_arm_is_one_yaml(tmp_path):
    urdf = tmp_path / 'arm.urdf'
    urdf.write_text('<robot name="arm"><joint name="j1" type="revolute"><limit lower="-1" '
                    'upper="1" velocity="2" effort="3"/></joint><joint name="g" '
                    'type="prismatic"><limit lower="0" upper="0.05" velocity="0.1" '
                    'effort="5"/></joint></robot>')
    path = _write(tmp_path / 'arm.yaml', name='arm', urdf='arm.urdf', joint_names=['j1', 'g'],
                  gripper={'joint': 'g', 'open_m': 0.05, 'mimic_joints': []},
                  home_pose=[0.0, 0.05], control_rate_hz=50.0,
                  topics={'joint_state': '/arm/joint_states'})
    robot = load_robot(path)
    assert robot.name == 'arm' and robot.joint_names == ('j1', 'g')
    assert robot.state_joint_names == ('j1', 'g') and robot.arm_joint_names == ('j1',)
    assert robot.urdf_path() == str(urdf)  # relative to the YAML
    np.testing.assert_allclose(robot.joint_limits().upper, [1.0, 0.05])
    assert robot.control_rate_hz == 50.0
    assert robot.topics.joint_state == '/arm/joint_states'
    assert robot.topics.command == '/forward_position_controller/commands'  # kept from the copy
    assert RobotDescription.from_dict(robot.to_dict()) == RobotDescription.from_dict(
        robot.to_dict())
    assert RobotDescription.from_dict(robot.to_dict()).joint_names == robot.joint_names


@pytest.mark.parametrize('changes, message', [
    ({'joint_nmes': ['a']}, "unknown keys \\['joint_nmes'\\]"),
    ({'gripper': {'joint': 'nope'}}, "gripper joint 'nope' is not one of"),
    ({'home_pose': [0.0]}, 'home_pose needs 8 values'),
    ({'control_rate_hz': 0.0}, 'control_rate_hz must be a positive number'),
    ({'frames': {'base': 'b', 'tol': 't'}}, "frames: unknown keys \\['tol'\\]"),
    ({'topics': {'_replace': True, 'joint_state': '/js'}}, 'topics: missing keys'),
    ({'gripper': {'joint': 'panda_finger_joint1', 'mimic_joints': ['panda_joint1']}},
     'must not be commanded'),
])
def test_bad_descriptions_say_what_is_wrong(tmp_path, changes, message):
    with pytest.raises(ValueError, match=message):
        load_robot(_write(tmp_path / 'bad.yaml', **changes))


def test_missing_robot_and_urdf_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no robot description named 'ur42'"):
        load_robot('ur42')
    with pytest.raises(FileNotFoundError, match='does not exist'):
        load_robot(str(tmp_path / 'none.yaml'))
    robot = load_robot(_write(tmp_path / 'r.yaml', urdf='missing.urdf'))
    with pytest.raises(FileNotFoundError, match='missing.urdf'):
        robot.urdf_path()


def test_the_description_imports_no_ros_torch_or_pybullet():
    code = ('import sys, lam_ros.description as d; d.load_robot().urdf_path(); '
            'print(sorted({m.split(".")[0] for m in sys.modules} & '
            '{"rclpy", "torch", "pybullet", "gymnasium"}))')
    result = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True,
                            text=True, check=True)
    assert result.stdout.strip() == '[]'


def test_the_rate_is_written_in_the_description_only(tmp_path):
    """No code default stands behind a description: a YAML without a rate is an error."""
    with open(robot_yaml_path('panda')) as f:
        data = yaml.safe_load(f)
    del data['control_rate_hz']
    (tmp_path / 'norate.yaml').write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match="missing keys \\['control_rate_hz'\\]"):
        load_robot(str(tmp_path / 'norate.yaml'))


def _urdf_tree(robot):
    import xml.etree.ElementTree as ET
    root = ET.parse(robot.urdf_path()).getroot()
    joints = {j.get('name'): j for j in root.iter('joint')}
    links = {link.get('name') for link in root.iter('link')}
    return joints, links


@pytest.mark.parametrize('name', sorted(
    f[:-5] for f in os.listdir(os.path.join(ROOT, 'config', 'robots')) if f.endswith('.yaml')))
def test_every_description_loads_and_matches_its_urdf(name):
    robot = load_robot(name)
    assert robot.name == name
    joints, links = _urdf_tree(robot)
    missing = [j for j in robot.state_joint_names if j not in joints]
    assert not missing, f'{name}: joints {missing} are not in {robot.urdf_path()}'
    limits = robot.joint_limits()
    assert limits.joint_names == robot.joint_names
    assert np.all(np.isfinite(limits.lower)) and np.all(np.isfinite(limits.upper))
    assert np.all(limits.velocity > 0) and np.all(np.isfinite(limits.velocity))
    home = np.array(robot.home_pose)
    assert np.all(home >= limits.lower) and np.all(home <= limits.upper)
    assert robot.frames.tool in links and robot.frames.base in links
    assert set(robot.gripper.finger_links) <= links
    for mimic, mult in zip(robot.gripper.mimic_joints, robot.gripper.mimic_multipliers):
        tag = joints[mimic].find('mimic')
        if tag is not None:  # a URDF <mimic> must follow the commanded joint as described
            assert tag.get('joint') == robot.gripper.joint
            assert float(tag.get('multiplier', 1.0)) == pytest.approx(mult)
    assert RobotDescription.from_dict(robot.to_dict(), robot.source) == robot


def test_the_xarm_is_a_six_joint_arm_with_a_drive_gripper():
    robot = load_robot('xarm6')
    assert robot.arm_dof == 6 and robot.action_dim == 7 and robot.gripper_index == 6
    assert robot.gripper.kind == 'drive' and robot.gripper.width_joints == ('drive_joint',)
    assert len(robot.state_joint_names) == 12
    assert robot.frames.tool_offset == (0.0, 0.0, 0.16)


def test_a_binary_gripper_limits_its_action_to_zero_and_one(tmp_path):
    robot = load_robot(_write(tmp_path / 'bin.yaml', name='panda_binary', gripper={
        'kind': 'binary', 'open': 0.04, 'closed': 0.0}, home_pose=[
        0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785, 1.0], urdf=load_robot().urdf_path()))
    limits = robot.joint_limits()
    assert (limits.lower[7], limits.upper[7]) == (0.0, 1.0)
    np.testing.assert_allclose(limits.upper[:7], load_robot().joint_limits().upper[:7])


def test_an_arm_without_a_gripper_has_arm_joints_only(tmp_path):
    panda = load_robot()
    robot = load_robot(_write(tmp_path / 'bare.yaml', name='bare', joint_names=list(
        panda.arm_joint_names), gripper={'_replace': True, 'kind': 'none'},
        home_pose=list(panda.home_pose[:7]), urdf=panda.urdf_path()))
    assert robot.action_dim == 7 and robot.gripper_index == -1
    assert robot.state_joint_names == panda.arm_joint_names
