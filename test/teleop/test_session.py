"""Teleop sessions without ROS: sources, re-anchoring, stale input, and the command gate."""

import json

from lam_ros.control.gate import CommandGate, GateConfig
from lam_ros.control.limits import JointLimits
from lam_ros.teleop.joy import JoyCommand
from lam_ros.teleop.leader import LeaderConfig, LeaderMapping
from lam_ros.teleop.session import TeleopConfig, TeleopSession
from lam_ros.teleop.sources import CartesianSource, LeaderSource, ScriptedSource
import numpy as np
import pytest

LIMITS = JointLimits(('a', 'b'), np.array([-1.0, -1.0]), np.array([1.0, 1.0]),
                     np.array([2.0, 2.0]))
RATE_HZ = 10.0  # 0.2 rad per tick at most


def leader_session(timeout_s=0.3):
    source = LeaderSource(LeaderMapping(LeaderConfig(follower_joints=['a', 'b'])), timeout_s)
    gate = CommandGate(LIMITS, RATE_HZ, GateConfig(state_timeout_s=0.5))
    return source, TeleopSession(source, gate)


def test_nothing_before_a_state_then_the_leader_is_followed_through_the_gate():
    source, session = leader_session()
    assert session.tick(0.0) is None
    assert session.on_state(0.0, [0.1, 0.2])
    np.testing.assert_allclose(session.tick(0.0), [0.1, 0.2])  # anchored: no leader yet
    source.on_leader(0.05, ['b', 'a', 'x'], [0.9, -0.5, 3.0])
    np.testing.assert_allclose(session.tick(0.1), [-0.1, 0.4])  # velocity limited
    session.on_state(0.1, [0.0, 0.3])
    np.testing.assert_allclose(session.tick(0.2), [-0.3, 0.6])
    # The leader went quiet: hold the last command.
    session.on_state(0.5, [0.0, 0.3])
    np.testing.assert_allclose(session.tick(0.5), [-0.3, 0.6])


def test_stale_state_holds_and_a_bad_state_is_refused():
    source, session = leader_session(timeout_s=10.0)
    session.on_state(0.0, [0.0, 0.0])
    session.tick(0.0)
    source.on_leader(0.0, ['a', 'b'], [0.5, 0.5])
    assert session.tick(0.1) is not None
    held = session.tick(0.7)  # the last state is 0.7 s old
    np.testing.assert_allclose(session.tick(0.8), held)
    assert 'old' in session.gate.reason
    assert not session.on_state(1.0, [np.nan, 0.0])
    assert not session.on_state(1.0, [0.0])


def test_resync_waits_for_a_state_from_after_the_reset():
    source, session = leader_session()
    session.on_state(0.0, [0.1, 0.1])
    session.tick(0.0)
    source.on_leader(0.0, ['a', 'b'], [0.2, 0.2])
    session.tick(0.1)
    session.resync()
    assert session.tick(0.2) is None  # no state since the reset
    session.on_state(0.25, [-0.4, 0.0])
    np.testing.assert_allclose(session.tick(0.3), [-0.4, 0.0])  # the old leader was dropped


def test_leader_errors_name_the_problem():
    source, _ = leader_session()
    with pytest.raises(ValueError, match=r"lacks joints \['b'\]"):
        source.on_leader(0.0, ['a'], [0.0])


@pytest.fixture(scope='module')
def panda():
    """Provide the Panda's description, limits and (PyBullet) kinematics."""
    from lam_ros.description.robot import load_robot
    from lam_ros.sim.kinematics import PandaKinematics
    robot = load_robot('panda')
    kin = PandaKinematics()
    yield robot, robot.joint_limits(), kin
    kin.close()


def test_twists_by_frame_go_stale_and_joy_needs_its_dead_man(panda):
    from lam_ros.teleop.cartesian import CartesianTeleop
    robot, limits, kin = panda
    source = CartesianSource(CartesianTeleop(kin, limits), 0.3, robot.frames.base,
                             robot.frames.tool)
    home = np.array(robot.home_pose)
    source.sync(home)
    start, _ = kin.fk(home[:7])
    source.on_twist(0.0, '/' + robot.frames.base, [0.0, 0.0, 0.1], [0, 0, 0])
    source.on_gripper(0.5)
    q = source.target(0.1, 0.5, home)
    np.testing.assert_allclose(kin.fk(q[:7])[0] - start, [0.0, 0.0, 0.05], atol=2e-3)
    assert q[7] == pytest.approx(0.02)
    q2 = source.target(0.5, 0.5, home)  # the twist is 0.5 s old: stale, no motion
    np.testing.assert_allclose(q2, q)
    with pytest.raises(ValueError, match="frame 'camera'"):
        source.on_twist(0.6, 'camera', [0, 0, 0], [0, 0, 0])
    with pytest.raises(ValueError, match='NaN'):
        source.on_twist(0.6, '', [np.nan, 0, 0], [0, 0, 0])
    with pytest.raises(ValueError, match='NaN'):
        source.on_gripper(float('inf'))
    source.on_joy(1.0, JoyCommand(False, np.array([0.1, 0, 0]), np.zeros(3), None))
    np.testing.assert_allclose(source.target(1.0, 0.5, home), q)  # no dead-man: no motion
    source.on_joy(1.0, JoyCommand(True, np.array([0.1, 0, 0]), np.zeros(3), None))
    assert kin.fk(source.target(1.0, 0.5, home)[:7])[0][0] > kin.fk(q[:7])[0][0] + 0.04


def test_scripted_expert_waits_for_poses_and_a_recording_and_restarts_on_a_jump(panda):
    from lam_ros.sim.expert import ScriptedExpert
    robot, limits, kin = panda
    source = ScriptedSource(ScriptedExpert('lift', kinematics=kin), ('object_pose',), 0.5,
                            0.05, wait_for_recording=True)
    session = TeleopSession(source, CommandGate(limits, robot.control_rate_hz))
    home = np.array(robot.home_pose)
    session.on_state(0.0, home)
    cube = np.array([0.5, 0.1, 0.02, 1.0, 0.0, 0.0, 0.0])
    assert not source.on_pose(0.0, 'object_pose', cube)
    np.testing.assert_allclose(session.tick(0.0), home)  # not recording yet: hold
    source.on_recorder_status(json.dumps({'state': 'recording'}))
    for k in range(1, 6):
        session.on_state(0.05 * k, home)
        command = session.tick(0.05 * k)
    assert session.gate.reason == '' and not np.allclose(command, home)  # the expert acts
    assert limits.within_position(command)
    np.testing.assert_allclose(session.tick(1.0), command)  # the cube pose went stale
    with pytest.raises(ValueError, match='recorder status'):
        source.on_recorder_status('{not json')
    assert source.on_pose(1.0, 'object_pose', cube + [0.1, 0, 0, 0, 0, 0, 0])


def test_config_fills_empty_settings_from_the_robot_description():
    cfg = TeleopConfig(source='leader', command_interface='trajectory').resolved()
    robot = cfg.description
    assert cfg.rate_hz == robot.control_rate_hz and cfg.joint_names == list(robot.joint_names)
    assert cfg.command_topic == robot.topics.trajectory_command
    assert cfg.base_frame == robot.frames.base and cfg.ee_frame == robot.frames.tool
    assert TeleopConfig(rate_hz=50.0, joint_state_topic='/js').resolved().rate_hz == 50.0
    with pytest.raises(ValueError, match='source must be one of'):
        TeleopConfig(source='mouse')
