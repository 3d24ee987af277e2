"""Replay plans without ROS: start rules, timing, speed, and finding an episode."""

from lam_ros.data import messages as m
from lam_ros.data.bags.replay import (
    load_episode, Recording, ReplayPlan, ReplaySettings, tracking_error, unknown_episode)
from lam_ros.data.bags.writer import write_bag
import numpy as np
import pytest

NAMES = ['j1', 'j2']


def plan(**settings):
    times = np.array([0, 100, 200, 300]) * 1_000_000 + 5_000_000_000
    commands = np.array([[0.0, 0.0], [0.1, 0.0], [0.2, 0.0], [0.3, 0.0]])
    return ReplayPlan(times, commands, NAMES, ReplaySettings(**settings))


def test_commands_come_due_at_their_recorded_timing_and_speed():
    p = plan(speed=2.0)
    assert p.point_time_s == pytest.approx(0.05)
    assert [c[0] for c in p.due(0.0)] == [0.0]
    assert p.due(0.04) == []
    assert [c[0] for c in p.due(0.1)] == [0.1, 0.2]
    assert not p.done
    assert [c[0] for c in p.due(5.0)] == [0.3] and p.done and p.sent == 4


def test_start_waits_for_a_subscriber_and_a_close_state():
    p = plan(max_start_deviation=0.05, wait_timeout_s=1.0)
    assert p.start_check(0.5, 0, None) == (False, '')
    assert p.start_check(1.5, 0, None)[1].startswith('no subscriber')
    assert p.start_check(0.5, 1, None) == (False, '')
    assert 'no joint state after 1 s' in p.start_check(1.5, 1, None)[1]
    ready, error = p.start_check(0.5, 1, np.array([0.0, 0.2]))
    assert not ready and error.startswith('j2 is 0.200 from the first command')
    assert p.start_check(0.5, 1, np.array([0.01, -0.01])) == (True, '')
    assert plan(check_start_state=False).start_check(0.0, 1, None) == (True, '')


def test_bad_plans_and_settings_are_refused():
    with pytest.raises(ValueError, match='need'):
        ReplayPlan([0], np.zeros((1, 3)), NAMES)
    with pytest.raises(ValueError, match='finite'):
        ReplayPlan([0, 1], [[0.0, np.nan], [0.0, 0.0]], NAMES)
    with pytest.raises(ValueError, match='speed'):
        ReplaySettings(speed=0.0)


def test_load_episode_finds_the_commands_or_lists_the_episodes(tmp_path):
    joints = [f'panda_joint{i}' for i in range(1, 8)] + ['panda_finger_joint1']
    cmd = '/forward_position_controller/commands'
    records = [('/joint_states', m.JOINT_STATE, 10 + k, m.joint_state(10 + k, joints,
                                                                      np.zeros(8)))
               for k in range(3)]
    records += [(cmd, m.FLOAT64_ARRAY, 20 + k, m.float64_array(np.full(8, k)))
                for k in range(2)]
    write_bag(tmp_path / 'ep', records)
    times, commands, mapping = load_episode(str(tmp_path / 'ep'), 'ep')
    assert list(times) == [20, 21] and commands.shape == (2, 8)
    assert mapping.command_topic == cmd
    with pytest.raises(ValueError, match=r"no episode 'zz' .* it has 1: ep"):
        load_episode(str(tmp_path / 'ep'), 'zz')


def test_a_missing_episode_names_the_closest_not_all():
    names = [f'episode_{i:06d}' for i in range(50)]
    text = unknown_episode('episode_3', names, 'demos')
    assert text == "no episode 'episode_3' in demos; closest: episode_000003 (50 episodes)"
    text = unknown_episode('nothing', names, 'demos')
    assert text == ("no episode 'nothing' in demos; it has 50: episode_000000, episode_000001, "
                    'episode_000002 ... episode_000049')


def test_tracking_error_aligns_the_replay_with_the_recording_at_the_first_command():
    joints = ['a', 'b']
    mapping = type('Mapping', (), {'joint_names': joints})()
    t_ns = np.arange(0, 2_000_000_000, 100_000_000) + 5_000_000_000
    states = np.stack([np.linspace(0, 1, t_ns.size), np.zeros(t_ns.size)], axis=1)
    rec = Recording(t_ns, states, mapping, t_ns, states)
    # The same motion, sampled elsewhere, with joint b off by 0.02 throughout.
    got_t = np.linspace(0, 1.9, 77)
    got = np.stack([np.interp(got_t, (t_ns - t_ns[0]) * 1e-9, states[:, 0]),
                    np.full(got_t.size, 0.02)], axis=1)
    err = tracking_error(rec, got_t, got)
    assert err['worst_joint'] == 'b' and err['max'] == pytest.approx(0.02)
    assert err['per_joint_max'][0] == pytest.approx(0.0, abs=1e-9)
    assert err['rms'] == pytest.approx(0.02 / np.sqrt(2))
    # At double speed the replayed times are half the recorded ones.
    err = tracking_error(rec, got_t / 2, got, speed=2.0)
    assert err['per_joint_max'][0] == pytest.approx(0.0, abs=1e-9)
    assert tracking_error(rec, [0.0], [[0.0, 0.0]]) is None
