"""Tests for twist integration into an end-effector target."""

from lam_ros.teleop.twist import as_pose, EndEffectorTarget, pose_error, TwistConfig
import numpy as np
import pytest
from transforms3d.quaternions import quat2mat

START = [0.5, 0.0, 0.3, 0.0, 1.0, 0.0, 0.0]  # tool pointing down (180 deg about x)


def test_linear_twist_moves_target_in_base_frame():
    target = EndEffectorTarget(TwistConfig(), START)
    for _ in range(10):
        target.integrate([0.1, 0.0, -0.05], [0, 0, 0], 0.1)
    np.testing.assert_allclose(target.pose[:3], [0.6, 0.0, 0.25], atol=1e-9)
    np.testing.assert_allclose(target.pose[3:], START[3:], atol=1e-9)


def test_ee_frame_twist_is_rotated_into_base():
    target = EndEffectorTarget(TwistConfig(), START)
    # The tool z axis points down, so +z in the tool frame is -z in the base frame.
    target.integrate([0.0, 0.0, 0.1], [0, 0, 0], 0.5, frame='ee')
    np.testing.assert_allclose(target.pose[:3], [0.5, 0.0, 0.25], atol=1e-9)


def test_angular_twist_turns_about_base_axis():
    target = EndEffectorTarget(TwistConfig(), START)
    for _ in range(100):
        target.integrate([0, 0, 0], [0, 0, np.pi / 4], 0.02)
    rot = quat2mat(target.pose[3:])
    # Tool x axis started along base +x; a quarter turn about base z points it along +y.
    np.testing.assert_allclose(rot[:, 0], [0, 1, 0], atol=1e-6)
    assert pose_error(START, target.pose)[1] == pytest.approx(np.pi / 2, abs=1e-6)


def test_speed_cap_and_workspace_box():
    config = TwistConfig(max_linear_speed_mps=0.2, workspace_max_m=(0.55, 0.6, 0.8))
    target = EndEffectorTarget(config, START)
    target.integrate([3.0, 4.0, 0.0], [0, 0, 0], 0.1)  # 5 m/s capped to 0.2 m/s
    np.testing.assert_allclose(target.pose[:3], [0.512, 0.016, 0.3], atol=1e-9)
    for _ in range(50):
        target.integrate([0.2, 0, 0], [0, 0, 0], 0.1)
    assert target.pose[0] == pytest.approx(0.55)


def test_bad_twists_and_poses_are_rejected():
    target = EndEffectorTarget(TwistConfig(), START)
    with pytest.raises(ValueError, match='frame'):
        target.integrate([0, 0, 0], [0, 0, 0], 0.1, frame='tool0')
    with pytest.raises(ValueError, match='finite'):
        target.integrate([np.nan, 0, 0], [0, 0, 0], 0.1)
    with pytest.raises(ValueError, match='7 finite'):
        as_pose([0, 0, 0])
    with pytest.raises(ValueError, match='workspace_min_m'):
        TwistConfig(workspace_min_m=(1, 0, 0), workspace_max_m=(0, 1, 1))
