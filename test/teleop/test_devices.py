"""Tests for the keyboard map, joystick map, leader mapping and input freshness."""

from lam_ros.control.watchdog import InputWatch
from lam_ros.teleop.joy import joy_to_command, JoyConfig
from lam_ros.teleop.keyboard import KeyboardConfig, KeyboardTeleop, TerminalKeyReader
from lam_ros.teleop.leader import LeaderConfig, LeaderMapping
import numpy as np
import pytest


def test_keyboard_keys_map_to_base_frame_twists():
    kb = KeyboardTeleop(KeyboardConfig(linear_speed_mps=0.1, angular_speed_radps=0.5,
                                       key_hold_s=0.3))
    assert kb.on_key('w', 1.0)
    lin, ang = kb.twist(1.1)
    np.testing.assert_allclose(lin, [0.1, 0, 0])
    np.testing.assert_allclose(ang, [0, 0, 0])
    kb.on_key('f', 2.0)
    np.testing.assert_allclose(kb.twist(2.0)[0], [0, 0, -0.1])
    kb.on_key('j', 3.0)
    np.testing.assert_allclose(kb.twist(3.0)[1], [0, 0, 0.5])
    # Released: no repeat within key_hold_s stops the motion.
    assert not np.any(kb.twist(3.5)[1])
    kb.on_key('c', 4.0)
    assert kb.gripper_open_fraction == 0.0
    kb.on_key(' ', 4.1)
    assert kb.gripper_open_fraction == 1.0
    kb.on_key('+', 4.2)
    kb.on_key('a', 4.2)
    np.testing.assert_allclose(kb.twist(4.2)[0], [0, 0.125, 0])
    assert not kb.on_key('z', 5.0)


def test_terminal_reader_refuses_a_non_terminal(tmp_path):
    with open(tmp_path / 'f.txt', 'w+') as stream:
        with pytest.raises(ValueError, match='interactive terminal'):
            TerminalKeyReader(stream)


def test_terminal_reader_reads_keys_from_a_pty():
    import os
    import pty
    leader, follower = pty.openpty()
    try:
        with os.fdopen(follower, 'r', closefd=False) as stream:
            with TerminalKeyReader(stream) as reader:
                os.write(leader, b'wd ')
                assert reader.read_keys(timeout_s=1.0) == ['w', 'd', ' ']
                assert reader.read_keys(timeout_s=0.0) == []
    finally:
        os.close(leader)
        os.close(follower)


def test_joy_deadman_axes_and_gripper_buttons():
    config = JoyConfig(deadman_button=4, linear_axes=[1, 0, 4],
                       linear_scale_mps=[0.2, 0.2, -0.1], angular_axes=[-1, -1, 3],
                       angular_scale_radps=[1, 1, 0.5], deadzone=0.1)
    axes = [0.05, 0.5, 0.0, -1.0, 1.0, 0, 0, 0]
    released = joy_to_command(axes, [0, 0, 0, 0, 0, 0], config)
    assert not released.enabled and not np.any(released.linear_mps)
    held = joy_to_command(axes, [0, 1, 0, 0, 1, 0], config)
    assert held.enabled
    np.testing.assert_allclose(held.linear_mps, [0.1, 0.0, -0.1])  # 0.05 is in the dead zone
    np.testing.assert_allclose(held.angular_radps, [0, 0, -0.5])
    assert held.gripper_open_fraction == 1.0
    assert joy_to_command(axes, [1, 0, 0, 0, 0], config).gripper_open_fraction == 0.0
    # A pad with fewer axes than mapped simply leaves those at zero.
    short = joy_to_command([0.0, 1.0], [0, 0, 0, 0, 1], config)
    np.testing.assert_allclose(short.linear_mps, [0.2, 0, 0])
    with pytest.raises(ValueError, match='dead-man'):
        JoyConfig(deadman_button=-1)
    with pytest.raises(ValueError, match='3 entries'):
        JoyConfig(linear_axes=[0, 1])


def test_leader_maps_by_name_with_scale():
    config = LeaderConfig(follower_joints=['j1', 'j2', 'finger'],
                          leader_joints=['l1', 'l2', 'grip'],
                          scale=[1.0, -1.0, 0.04], offset=[0.0, 0.1, 0.0])
    mapping = LeaderMapping(config)
    cmd = mapping.map(['grip', 'extra', 'l2', 'l1'], [0.5, 9.0, 0.3, -0.2])
    np.testing.assert_allclose(cmd, [-0.2, -0.2, 0.02])
    with pytest.raises(ValueError, match=r"lacks joints \['l2'\]"):
        mapping.map(['l1', 'grip'], [0.0, 0.0])
    with pytest.raises(ValueError, match='not finite'):
        mapping.map(['l1', 'l2', 'grip'], [0.0, np.nan, 0.0])
    with pytest.raises(ValueError, match='expected 3'):
        LeaderConfig(follower_joints=['a', 'b', 'c'], scale=[1.0])
    same = LeaderMapping(LeaderConfig(follower_joints=['a', 'b']))
    np.testing.assert_allclose(same.map(['b', 'a'], [2.0, 1.0]), [1.0, 2.0])


def test_input_watch():
    watch = InputWatch(0.2)
    assert not watch.fresh(0.0)
    watch.touch(1.0)
    assert watch.fresh(1.15) and not watch.fresh(1.25)
    watch.clear()
    assert not watch.fresh(1.0)
    with pytest.raises(ValueError, match='timeout_s'):
        InputWatch(0.0)
