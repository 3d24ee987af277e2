"""Tests for the gripper model: the four kinds, their action entries and their errors."""

from lam_ros.description.gripper import gripper_from_dict, GripperSpec
import pytest


def test_a_finger_gripper_sums_its_fingers_and_commands_metres():
    grip = gripper_from_dict({'joint': 'f1', 'mimic_joints': ['f2'], 'open_m': 0.04,
                              'closed_m': 0.0}, 'test')
    assert grip.kind == 'finger' and grip.width_joints == ('f1', 'f2')
    assert grip.action(1.0) == 0.04 and grip.action(0.0) == 0.0 and grip.action(0.5) == 0.02
    assert grip.open_fraction(0.01) == pytest.approx(0.25)
    assert grip.mimic_positions(0.03) == (0.03,)
    assert grip.action_range == (0.0, 0.04)


def test_a_drive_gripper_commands_its_drive_joint_and_the_mimics_follow():
    grip = GripperSpec(kind='drive', joint='drive', open=0.0, closed=0.85,
                       mimic_joints=('a', 'b'), mimic_multipliers=(1.0, -1.0))
    assert grip.width_joints == ('drive',)
    assert grip.action(0.0) == 0.85 and grip.action(1.0) == 0.0  # open is the low end here
    assert grip.open_fraction(0.85) == 0.0 and grip.open_fraction(0.0) == 1.0
    assert grip.mimic_positions(0.5) == (0.5, -0.5)
    assert grip.joint_position(0.3) == 0.3


def test_a_binary_gripper_commands_open_or_closed_only():
    grip = GripperSpec(kind='binary', joint='g', open=0.04, closed=0.0)
    assert grip.action_range == (0.0, 1.0)
    assert [grip.action(f) for f in (0.0, 0.49, 0.5, 1.0)] == [0.0, 0.0, 1.0, 1.0]
    assert grip.joint_position(0.7) == 0.04 and grip.joint_position(0.2) == 0.0
    assert grip.open_fraction(0.9) == 1.0


def test_no_gripper_has_no_action_entry():
    grip = gripper_from_dict({'kind': 'none'}, 'test')
    assert not grip.commanded and grip.width_joints == ()


@pytest.mark.parametrize('data, message', [
    ({'kind': 'vacuum', 'joint': 'g', 'open': 1, 'closed': 0}, "kind 'vacuum' is not one of"),
    ({'kind': 'none', 'joint': 'g'}, "'none' takes no joint"),
    ({'joint': 'g', 'open': 0.0}, "missing keys \\['closed'\\]"),
    ({'joint': 'g', 'open': 0.0, 'closed': 0.0}, 'must differ'),
    ({'joint': 'g', 'open': 1, 'closed': 0, 'mimic_joints': ['a'],
      'mimic_multipliers': [1, 2]}, 'one value per mimic joint'),
    ({'joint': 'g', 'open': 1, 'closed': 0, 'width': 2}, "unknown keys \\['width'\\]"),
])
def test_bad_grippers_say_what_is_wrong(data, message):
    with pytest.raises(ValueError, match=message):
        gripper_from_dict(data, 'arm.yaml')


def test_the_gripper_round_trips_through_its_yaml_mapping():
    grip = GripperSpec(kind='drive', joint='d', open=0.0, closed=0.85, mimic_joints=('m',),
                       finger_links=('l', 'r'))
    assert gripper_from_dict(grip.to_dict(), 'test') == grip
