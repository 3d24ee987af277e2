"""Tests for lam_ros.data.recording.timing: log times and episode windows on the stamp clock."""

from lam_ros.data import messages
from lam_ros.data.recording.timing import (
    Arrivals, bool_value, EpisodeTiming, has_header, header_stamp_ns)
import pytest

MS = 10**6
TOPICS = {'/joint_states': messages.JOINT_STATE,
          '/cmd': messages.FLOAT64_ARRAY,
          '/task_success': messages.BOOL,
          '/traj': messages.JOINT_TRAJECTORY}


def _state(stamp_ns: int) -> bytes:
    return messages.serialize(messages.ROSBAGS.joint_state(stamp_ns, ['j'], [0.0], [0.0],
                                                           [0.0]), messages.JOINT_STATE)


def _cmd(value: float) -> bytes:
    return messages.serialize(messages.ROSBAGS.float64_array([value]), messages.FLOAT64_ARRAY)


def test_header_stamps_are_read_from_cdr_without_decoding() -> None:
    assert has_header(messages.JOINT_STATE) and has_header(messages.POSE_STAMPED)
    assert not has_header(messages.FLOAT64_ARRAY) and not has_header(messages.BOOL)
    assert header_stamp_ns(_state(12 * 10**9 + 345)) == 12 * 10**9 + 345
    assert header_stamp_ns(b'\x00\x01') is None
    assert bool_value(messages.serialize(messages.ROSBAGS.bool_msg(True), messages.BOOL))
    assert not bool_value(messages.serialize(messages.ROSBAGS.bool_msg(False), messages.BOOL))


def test_a_lagging_recorder_logs_states_at_their_stamps_and_commands_on_their_clock() -> None:
    """
    The simulation runs 10x real time; the callbacks run seconds after the arrivals.

    Arrivals (wall ms): a state every 1 ms stamped 10 ms apart, a command at 5.5 ms. The
    command's callback runs before the states that arrived around it are processed.
    """
    timing = EpisodeTiming(TOPICS, '/joint_states', ['/cmd'])
    timing.begin(2 * MS)
    out = []
    out += timing.push('/joint_states', _state(0), 0)  # before the start: dropped
    out += timing.push('/cmd', _cmd(1.0), 5 * MS + MS // 2)  # waits for the states
    assert out == []
    for k in range(1, 10):
        out += timing.push('/joint_states', _state(k * 10 * MS), k * MS)
    logged = {(s.topic, s.log_time_ns) for s in out}
    assert ('/cmd', 55 * MS) in logged  # halfway between the states stamped 50 and 60 ms
    states = sorted(t for topic, t in logged if topic == '/joint_states')
    # The state that arrived last before the start (at 1 ms) opens the episode.
    assert states == [k * 10 * MS for k in range(1, 10)]


def test_arrivals_follow_the_send_order_when_the_receiving_threads_wake_late() -> None:
    """
    The sim publishes states every 1 ms; the commander sends at 5.5 ms, from a host 40 ms ahead.

    The recorder process sleeps from 5 to 9 ms: the states of 5-8 ms are received at 9.0 ms,
    the command after them at 9.1 ms. Its arrival is still between the states of 5 and 6 ms.
    """
    arrivals = Arrivals()
    state_arrivals = []
    for k in range(10):
        received = 9 * MS if 5 <= k <= 8 else k * MS + 50_000
        state_arrivals.append(arrivals.arrival('sim', k * MS, received))
    for k in range(5):  # earlier commands: one of them came through at once (transit 0.05 ms)
        arrivals.arrival('teleop', k * MS + 40 * MS, k * MS + 50_000 + 2 * MS * (k != 2))
    command = arrivals.arrival('teleop', 5 * MS + MS // 2 + 40 * MS, 9 * MS + 100_000)
    assert state_arrivals[5] < command < state_arrivals[6]
    assert state_arrivals == [k * MS + 50_000 for k in range(10)]
    assert arrivals.arrival('bag', 0, 7 * MS) == 7 * MS  # no source stamp: as received


def test_stop_keeps_what_arrived_before_it_and_waits_for_every_topic() -> None:
    timing = EpisodeTiming(TOPICS, '/joint_states', ['/cmd'])
    timing.begin(0)
    out = timing.push('/joint_states', _state(1000 * MS), 1 * MS)
    out += timing.push('/task_success', messages.serialize(messages.ROSBAGS.bool_msg(True),
                                                           messages.BOOL), 2 * MS)
    timing.end(10 * MS)
    assert timing.stopping and not timing.poll()  # the first poll only starts the count
    # Queued states that arrived before the stop are still processed; later ones are not.
    out += timing.push('/joint_states', _state(1010 * MS), 9 * MS)
    assert not timing.poll()  # the states were still delivering before the stop
    assert timing.lagging() == ['/joint_states', '/task_success']
    out += timing.push('/joint_states', _state(1020 * MS), 11 * MS)
    assert timing.poll()  # states passed the stop; success delivered nothing since
    out += timing.finish()
    # success arrived 1/8 of the way from the state at 1 ms to the one at 9 ms
    assert [(s.topic, s.log_time_ns) for s in out] == [
        ('/joint_states', 1000 * MS), ('/joint_states', 1010 * MS),
        ('/task_success', 1000 * MS + 10 * MS // 8)]
    assert not timing.recording


def test_commands_are_logged_at_arrival_even_with_a_header_and_a_restart_resets_the_clock():
    timing = EpisodeTiming(TOPICS, '/joint_states', ['/cmd', '/traj'])
    timing.push('/joint_states', _state(500 * MS), 0)
    timing.begin(MS)
    traj = messages.serialize(messages.ROSBAGS.joint_trajectory(
        7 * 10**9, ['j'], [[0.1]], [0.5]), messages.JOINT_TRAJECTORY)
    assert timing.push('/traj', traj, 2 * MS) == []  # its stamp is a start time, not a log time
    assert timing.push('/cmd', _cmd(0.0), 2 * MS) == []
    # A restarted sim: the stamps go back; pairs of the old clock are forgotten.
    out = timing.push('/joint_states', _state(10 * MS), 3 * MS)
    assert sorted(s.log_time_ns for s in out) == [10 * MS] * 3 + [500 * MS]  # + the opening


def test_reference_must_be_stamped_and_recorded() -> None:
    with pytest.raises(ValueError, match='not recorded'):
        EpisodeTiming(TOPICS, '/missing')
    with pytest.raises(ValueError, match='no header'):
        EpisodeTiming(TOPICS, '/cmd')
    timing = EpisodeTiming(TOPICS, '/joint_states')
    with pytest.raises(RuntimeError, match='no episode'):
        timing.end(0)
    timing.begin(0)
    timing.push('/cmd', _cmd(0.0), 1)
    assert timing.finish() == []  # no reference clock at all: nothing to place it on
