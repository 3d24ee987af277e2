"""Tests for Cartesian teleop on the real Panda kinematics."""

from lam_ros.control.limits import load_urdf_limits
from lam_ros.sim.kinematics import PandaKinematics
from lam_ros.sim.robot import HOME_JOINT_POS, JOINT_NAMES, panda_urdf_path
from lam_ros.teleop.cartesian import CartesianTeleop
import numpy as np
import pytest


@pytest.fixture(scope='module')
def teleop():
    kin = PandaKinematics()
    yield CartesianTeleop(kin, load_urdf_limits(panda_urdf_path(), JOINT_NAMES))
    kin.close()


def test_twist_moves_the_commanded_tool_the_right_way(teleop):
    teleop.sync(HOME_JOINT_POS)
    start, start_quat = teleop.kinematics.fk(teleop.command[:7])
    for _ in range(20):
        cmd = teleop.step([0.1, 0.0, 0.0], [0, 0, 0], 0.05)
    pos, quat = teleop.kinematics.fk(cmd[:7])
    np.testing.assert_allclose(pos - start, [0.1, 0.0, 0.0], atol=3e-3)
    assert abs(np.dot(quat, start_quat)) > 0.999
    for _ in range(20):
        cmd = teleop.step([0.0, 0.0, -0.1], [0, 0, 0], 0.05, gripper_open_fraction=0.25)
    pos, _ = teleop.kinematics.fk(cmd[:7])
    np.testing.assert_allclose(pos - start, [0.1, 0.0, -0.1], atol=3e-3)
    assert cmd[7] == pytest.approx(0.01)
    assert teleop.limits.within_position(cmd)


def test_zero_twist_holds_and_unreachable_target_is_pulled_back(teleop):
    teleop.sync(HOME_JOINT_POS)
    held = teleop.step([0, 0, 0], [0, 0, 0], 0.05)
    np.testing.assert_allclose(held, np.clip(HOME_JOINT_POS, teleop.limits.lower,
                                             teleop.limits.upper))
    # Push far outward (+x) at full speed: the arm can reach only so far.
    for _ in range(200):
        cmd = teleop.step([0.25, 0, 0], [0, 0, 0], 0.05)
    reached, _ = teleop.kinematics.fk(cmd[:7])
    assert np.linalg.norm(teleop.target_pose[:3] - reached) < 0.02
    assert teleop.limits.within_position(cmd)


def test_step_before_sync_is_an_error():
    kin = PandaKinematics()
    try:
        fresh = CartesianTeleop(kin, load_urdf_limits(panda_urdf_path(), JOINT_NAMES))
        assert not fresh.ready
        with pytest.raises(ValueError, match='sync'):
            fresh.step([0, 0, 0], [0, 0, 0], 0.1)
    finally:
        kin.close()


@pytest.mark.parametrize('name', ['panda', 'xarm6'])
def test_twist_teleop_drives_a_six_and_a_seven_joint_arm(name):
    from lam_ros.description import load_robot
    from lam_ros.sim.kinematics import ArmKinematics
    robot = load_robot(name)
    kin = ArmKinematics(robot=robot)
    try:
        teleop = CartesianTeleop(kin, robot.joint_limits())
        arm = [robot.joint_names.index(n) for n in robot.arm_joint_names]
        teleop.sync(np.array(robot.home_pose))
        start, _ = kin.fk(teleop.command[arm])
        for _ in range(20):
            cmd = teleop.step([0.0, 0.1, -0.05], [0, 0, 0], 0.05, gripper_open_fraction=0.0)
        assert cmd.shape == (robot.action_dim,) and teleop.limits.within_position(cmd)
        pos, _ = kin.fk(cmd[arm])
        np.testing.assert_allclose(pos - start, [0.0, 0.1, -0.05], atol=3e-3)
        assert cmd[robot.gripper_index] == pytest.approx(robot.gripper.closed)
        assert teleop.gripper_open_fraction(cmd) == 0.0
    finally:
        kin.close()


def test_limits_of_another_arm_are_refused():
    from lam_ros.description import load_robot
    from lam_ros.sim.kinematics import ArmKinematics
    kin = ArmKinematics(robot='xarm6')
    try:
        with pytest.raises(ValueError, match="joints of robot 'xarm6'"):
            CartesianTeleop(kin, load_robot('panda').joint_limits())
    finally:
        kin.close()


def test_the_workspace_box_comes_from_the_robot_description():
    from lam_ros.description import load_robot
    from lam_ros.sim.kinematics import ArmKinematics
    from lam_ros.teleop.twist import TwistConfig
    robot = load_robot('xarm6')
    assert TwistConfig.for_robot('xarm6').workspace_max_m == robot.workspace.max_m
    kin = ArmKinematics(robot=robot)
    try:
        teleop = CartesianTeleop(kin, robot.joint_limits())
        assert teleop.config.workspace_max_m == (0.7, 0.55, 0.7)
        teleop.sync(np.array(robot.home_pose))
        for _ in range(40):  # push up at full speed: the target stops at the box's top
            teleop.step([0.0, 0.0, 0.25], [0, 0, 0], 0.1)
        assert teleop.target_pose[2] <= 0.7 + 1e-9
    finally:
        kin.close()
