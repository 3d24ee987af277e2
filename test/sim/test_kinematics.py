"""Tests for the Panda grasp-frame kinematics."""

from lam_ros.sim.kinematics import orientation_error_rad, PandaKinematics, top_down_quat, yaw_of
from lam_ros.sim.robot import HOME_JOINT_POS
import numpy as np
import pytest


@pytest.fixture(scope='module')
def kin():
    k = PandaKinematics()
    yield k
    k.close()


def test_fk_of_home_points_the_gripper_down(kin):
    pos, quat = kin.fk(HOME_JOINT_POS[:7])
    assert 0.25 < pos[0] < 0.35 and abs(pos[1]) < 1e-3 and 0.4 < pos[2] < 0.55
    assert orientation_error_rad(quat, top_down_quat(yaw_of(quat))) < 1e-3


@pytest.mark.parametrize('pos, yaw', [
    ((0.5, 0.0, 0.1), 0.0), ((0.45, 0.15, 0.05), 0.6), ((0.6, -0.2, 0.25), -0.7),
    ((0.35, 0.05, 0.4), 0.3)])
def test_ik_fk_round_trip(kin, pos, yaw):
    quat = top_down_quat(yaw)
    q = kin.ik(pos, quat, HOME_JOINT_POS[:7])
    assert np.all(q >= kin.arm_lower) and np.all(q <= kin.arm_upper)
    reached, reached_quat = kin.fk(q)
    assert np.linalg.norm(reached - np.asarray(pos)) < 1e-3
    assert orientation_error_rad(reached_quat, quat) < 1e-2


def test_fk_of_ik_of_fk_is_consistent(kin):
    rng = np.random.default_rng(0)
    for _ in range(5):
        q = HOME_JOINT_POS[:7] + rng.uniform(-0.3, 0.3, 7)
        pos, quat = kin.fk(q)
        q2 = kin.ik(pos, quat, q + 0.05)
        pos2, quat2 = kin.fk(q2)
        assert np.linalg.norm(pos2 - pos) < 1e-3
        assert orientation_error_rad(quat2, quat) < 1e-2


def test_bad_inputs_raise(kin):
    with pytest.raises(ValueError, match='7'):
        kin.fk([0.0] * 6)
    with pytest.raises(ValueError, match='pos'):
        kin.ik([0.5, float('nan'), 0.1], top_down_quat(0.0))
    with pytest.raises(ValueError, match='quat'):
        kin.ik([0.5, 0.0, 0.1], [0.0, 0.0, 0.0, 0.0])
