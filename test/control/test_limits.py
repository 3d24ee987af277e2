"""Tests for URDF joint limits and the clamp / check helpers."""

from pathlib import Path

from lam_ros.control.limits import JointLimits, load_urdf_limits, parse_urdf_limits
import numpy as np
import pybullet_data
import pytest

PANDA_URDF = Path(pybullet_data.getDataPath()) / 'franka_panda' / 'panda.urdf'
COMMAND_JOINTS = [f'panda_joint{i}' for i in range(1, 8)] + ['panda_finger_joint1']

SMALL_URDF = """<robot name="r">
  <link name="a"/><link name="b"/><link name="c"/><link name="d"/>
  <joint name="spin" type="continuous"><parent link="a"/><child link="b"/></joint>
  <joint name="slide" type="prismatic"><parent link="b"/><child link="c"/>
    <limit lower="0.0" upper="0.5" velocity="0.1" effort="1"/></joint>
  <joint name="weld" type="fixed"><parent link="c"/><child link="d"/></joint>
</robot>"""


def test_panda_limits_match_the_urdf():
    limits = load_urdf_limits(PANDA_URDF, COMMAND_JOINTS)
    assert limits.joint_names == tuple(COMMAND_JOINTS)
    assert limits.lower[3] == pytest.approx(-3.1416)
    assert limits.upper[3] == pytest.approx(0.0)
    assert limits.upper[5] == pytest.approx(3.8223)
    assert limits.velocity[4] == pytest.approx(2.61)
    assert (limits.lower[7], limits.upper[7]) == (0.0, 0.04)
    everything = load_urdf_limits(PANDA_URDF)
    assert 'panda_finger_joint2' in everything.joint_names
    assert 'panda_joint8' not in everything.joint_names  # fixed joint


def test_continuous_and_fixed_joints():
    limits = parse_urdf_limits(SMALL_URDF)
    assert limits.joint_names == ('spin', 'slide')
    assert np.isinf(limits.lower[0]) and np.isinf(limits.upper[0])
    assert np.isinf(limits.velocity[0])
    np.testing.assert_allclose(limits.clamp_position([100.0, 0.7]), [100.0, 0.5])


def test_clamp_position_and_violations():
    limits = load_urdf_limits(PANDA_URDF, COMMAND_JOINTS)
    q = np.array([3.5, 0.0, 0.0, 0.5, 0.0, -1.0, 0.0, 0.05])
    clamped = limits.clamp_position(q)
    np.testing.assert_allclose(clamped, [2.9671, 0, 0, 0, 0, -0.0873, 0, 0.04])
    assert limits.within_position(clamped)
    assert not limits.within_position(q)
    bad = limits.position_violations(q)
    assert [v.split('=')[0] for v in bad] == [
        'panda_joint1', 'panda_joint4', 'panda_joint6', 'panda_finger_joint1']
    with pytest.raises(ValueError, match='NaN'):
        limits.clamp_position([np.nan] * 8)
    with pytest.raises(ValueError, match=r'expected \(8,\)'):
        limits.clamp_position([0.0] * 7)


def test_clamp_velocity_limits_each_joint_step():
    limits = load_urdf_limits(PANDA_URDF, COMMAND_JOINTS)
    prev = np.zeros(8)
    target = np.array([1.0, -1.0, 0.001, 0, 0, 0, 0, 0.04])
    out = limits.clamp_velocity(target, prev, dt_s=0.01)
    np.testing.assert_allclose(out[:3], [0.02175, -0.02175, 0.001])
    assert out[7] == pytest.approx(0.002)
    assert limits.velocity_violations(out, prev, 0.01) == []
    assert len(limits.velocity_violations(target, prev, 0.01)) == 3
    with pytest.raises(ValueError, match='dt_s'):
        limits.clamp_velocity(target, prev, dt_s=0.0)


def test_bad_input_is_explained(tmp_path):
    with pytest.raises(ValueError, match='does not exist'):
        load_urdf_limits(tmp_path / 'missing.urdf')
    with pytest.raises(ValueError, match='not valid XML'):
        parse_urdf_limits('<robot>')
    with pytest.raises(ValueError, match='no <limit'):
        parse_urdf_limits('<robot name="r"><joint name="j" type="revolute"/></robot>')
    with pytest.raises(ValueError, match=r"\['nope'\]"):
        load_urdf_limits(PANDA_URDF, ['nope'])
    with pytest.raises(ValueError, match='lower limit above upper'):
        JointLimits(('a',), np.array([1.0]), np.array([0.0]), np.array([1.0]))
