"""The hands-free episode loop, without ROS: resets, start, success or timeout, stop."""

from lam_ros.teleop.episodes import EpisodeFailed, EpisodeLoop, ServiceWait
import pytest


def _answer(loop, now_s, expected):
    assert loop.next_call(now_s) == expected
    assert loop.next_call(now_s) is None  # nothing new while a call is pending
    return loop.call_done(True, f'{expected} ok', now_s)


def test_episode_loop_success_waits_for_a_fresh_true_then_settles():
    loop = EpisodeLoop(2, episode_timeout_s=10.0, settle_s=0.5, reset_settle_s=0.2)
    _answer(loop, 100.0, 'sim_reset')
    _answer(loop, 100.0, 'teleop_reset')
    assert loop.next_call(100.1) is None  # the teleop re-anchors first
    _answer(loop, 100.2, 'start')
    loop.on_success(True, 100.3)  # stale: from before the reset
    assert loop.next_call(101.0) is None
    loop.on_success(False, 101.0)
    loop.on_success(True, 104.0)
    assert loop.next_call(104.4) is None
    result = _answer(loop, 104.5, 'stop')
    assert result.success and result.index == 0 and result.duration_s == pytest.approx(4.3)
    assert result.start_lag_s == pytest.approx(0.2)
    assert not loop.done
    _answer(loop, 105.0, 'sim_reset')  # the next episode starts over with the resets


def test_episode_loop_times_out_as_failure_and_finishes():
    loop = EpisodeLoop(1, episode_timeout_s=3.0, settle_s=0.5, reset_settle_s=0.0, resets=())
    _answer(loop, 0.5, 'start')
    loop.on_success(False, 1.0)
    assert loop.next_call(3.4) is None
    result = _answer(loop, 3.5, 'stop')
    assert not result.success and result.duration_s == pytest.approx(3.0)
    assert loop.done and loop.next_call(10.0) is None and loop.results == [result]


def test_episode_loop_failed_call_and_bad_settings_are_clear_errors():
    loop = EpisodeLoop(1, episode_timeout_s=3.0, resets=())
    assert loop.next_call(1.0) is None and loop.next_call(1.3) == 'start'
    with pytest.raises(EpisodeFailed, match='start failed in episode 1: disk full'):
        loop.call_done(False, 'disk full', 1.4)
    with pytest.raises(ValueError, match='episodes must be >= 1'):
        EpisodeLoop(0, episode_timeout_s=1.0)


def test_service_wait_names_what_is_missing_and_what_to_set():
    wait = ServiceWait(2.0, start_wall_s=10.0)
    missing = {'/nobody/start': 'start_service'}
    assert not wait.ready(11.0, missing, recorder_alive=True)
    with pytest.raises(EpisodeFailed, match=r"\['/nobody/start'\] are not available after 3 s"
                       r".*\['start_service'\]"):
        wait.ready(13.0, missing, recorder_alive=True)
    assert not wait.ready(11.0, {}, recorder_alive=False, status_topic='/rec/status')
    with pytest.raises(EpisodeFailed, match='no message on /rec/status'):
        wait.ready(12.5, {}, recorder_alive=False, status_topic='/rec/status')
    assert wait.ready(20.0, {}, recorder_alive=True)
    wait.restart(20.0)
    wait.check(21.9, '/sim/reset', 'sim_reset_service', answered=False)
    with pytest.raises(EpisodeFailed, match='set the sim_reset_service parameter'):
        wait.check(22.5, '/sim/reset', 'sim_reset_service', answered=False)
    with pytest.raises(EpisodeFailed, match='did not answer within 3 s'):
        wait.check(23.0, '/sim/reset', 'sim_reset_service', answered=True)
