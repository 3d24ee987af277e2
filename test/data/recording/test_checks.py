"""Tests for lam_ros.data.recording.checks: silent topics and invalid commands."""

from lam_ros.data import messages
from lam_ros.data.recording.checks import command_problem, short_values, TopicWatch

JOINTS = ['a', 'b', 'c']


def test_short_values_keep_huge_numbers_short():
    assert short_values([1e308, float('nan'), -0.5]) == '[1e+308, nan, -0.5]'
    assert short_values(range(10), limit=3) == '[0, 1, 2, ...]'


def test_silent_topics_are_named_with_their_age():
    watch = TopicWatch()
    watch.heard('/js', now_s=10.0)
    assert watch.silent(['/js', '/cmd'], 1.0, now_s=10.5) == ['/cmd (never heard)']
    assert watch.silent(['/js'], 1.0, now_s=12.0) == ['/js (silent for 2.0 s)']


def test_command_problems():
    array = messages.ROSBAGS.float64_array
    assert command_problem(array([0.0, 1.0, 2.0]), messages.FLOAT64_ARRAY, JOINTS) is None
    assert '2 values for 3 joints' in command_problem(array([0.0, 1.0]),
                                                      messages.FLOAT64_ARRAY, JOINTS)
    assert "NaN/Inf for ['b']" in command_problem(array([0.0, float('inf'), 1.0]),
                                                  messages.FLOAT64_ARRAY, JOINTS)
    traj = messages.ROSBAGS.joint_trajectory(0, ['a', 'x'], [0.0, 1.0], [0.1])
    assert "unknown joints ['x']" in command_problem(traj, messages.JOINT_TRAJECTORY, JOINTS)
    traj = messages.ROSBAGS.joint_trajectory(0, ['a', 'c'], [float('nan'), 1.0], [0.1])
    assert 'NaN/Inf' in command_problem(traj, messages.JOINT_TRAJECTORY, JOINTS)
