"""The inference loops as threads: a steady periodic tick and the policy on its step grid."""

import os
import time

from lam_ros.control.inference import InferenceConfig, InferenceController
from lam_ros.control.inference_threads import PeriodicThread, PolicyWorker, SPIN_S
from lam_ros.control.limits import load_urdf_limits
from lam_ros.control.loop_stats import TickStats
from lam_ros.description import load_robot
from lam_ros.policy import PolicyConfig
from lam_ros.sim.robot import ALL_JOINT_NAMES, HOME_JOINT_POS, JOINT_NAMES, panda_urdf_path
import numpy as np
import pytest


def test_periodic_thread_ticks_on_a_grid_and_stops():
    starts = []
    loop = PeriodicThread(0.01, starts.append, 'test-loop')
    loop.start()
    time.sleep(0.3)
    loop.stop()
    count = len(starts)
    time.sleep(0.05)
    assert len(starts) == count, 'no tick after stop()'
    # A loaded machine may skip ticks, but it never runs them in a burst.
    assert 10 <= count + loop.skipped <= 32
    assert min(np.diff(starts)) > 0.002


def test_periodic_thread_never_ticks_before_a_deadline_and_records_it():
    period = 0.005
    stats = TickStats(period)
    starts = []

    def tick(now):
        stats.record(now)
        starts.append(now)

    loop = PeriodicThread(period, tick, 'test-loop', spin_s=0.001, stats=stats)
    loop.start()
    try:
        assert_eventually(lambda: len(starts) >= 20)
    finally:
        loop.stop()
    ticks = stats.window()
    start, deadline, done = (np.array(c) for c in zip(*ticks))
    # Polling the clock from 1 ms before each deadline: never early, however loaded.
    assert np.all(start >= deadline) and np.all(done >= start)
    steps = np.diff(deadline) / period
    assert np.allclose(steps, np.rint(steps), atol=1e-6) and np.all(np.rint(steps) >= 1)
    summary = stats.summary()
    assert summary.ticks + summary.missed == round((deadline[-1] - deadline[0]) / period) + 1


def test_periodic_thread_gives_up_deadlines_an_overrun_passed():
    period = 0.01
    stats = TickStats(period)
    seen = []

    def tick(now):
        stats.record(now)
        seen.append(now)
        if len(seen) == 3:
            time.sleep(2.7 * period)  # runs past the next two deadlines and most of a third

    loop = PeriodicThread(period, tick, 'test-loop', stats=stats)
    loop.start()
    try:
        assert_eventually(lambda: len(seen) >= 6)
    finally:
        loop.stop()
    ticks = stats.window()
    gap = (ticks[3][1] - ticks[2][1]) / period
    # The tick after the overrun keeps to the grid: at least two deadlines were given up.
    assert loop.skipped >= 2 and round(gap) >= 3 and abs(gap - round(gap)) < 1e-6
    assert stats.summary().missed >= 2


def test_periodic_thread_does_not_poll_under_normal_scheduling():
    loop = PeriodicThread(0.01, lambda now: None, 'test-loop')
    loop.start()
    loop.stop()
    assert loop.spin_s == 0.0


def test_periodic_thread_checks_its_spin_time():
    with pytest.raises(ValueError, match='spin_s'):
        PeriodicThread(0.001, lambda now: None, 'test-loop', spin_s=0.0006)
    with pytest.raises(ValueError, match='spin_s'):
        PeriodicThread(0.001, lambda now: None, 'test-loop', spin_s=-1.0)


def assert_eventually(condition, timeout_s=30.0):
    end = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < end, 'condition not reached in time'
        time.sleep(0.01)


def test_periodic_thread_reports_a_failing_tick():
    errors = []

    def tick(now):
        raise RuntimeError('boom')

    loop = PeriodicThread(0.01, tick, 'test-loop', on_error=errors.append)
    loop.start()
    time.sleep(0.1)
    loop.stop()
    assert len(errors) == 1 and str(errors[0]) == 'boom'


class SlowBackend:
    """A policy taking at least ``delay_s`` per call; records how long each call took."""

    def __init__(self, config, delay_s):
        self.config, self.delay_s = config, delay_s
        self.durations = []

    def predict_chunk(self, obs, mask):
        start = time.monotonic()
        time.sleep(self.delay_s)
        chunk = np.tile(HOME_JOINT_POS, (self.config.chunk_size, 1))
        self.durations.append(time.monotonic() - start)
        return chunk


def test_policy_worker_tags_chunks_with_their_steps_and_skips_overrun_ones():
    policy = PolicyConfig(joint_names=JOINT_NAMES, obs_spec={'joint_pos': (8,)}, chunk_size=8,
                          control_rate_hz=50.0)
    backend = SlowBackend(policy, 0.03)
    ctl = InferenceController(backend, load_urdf_limits(panda_urdf_path()),
                              InferenceConfig(checkpoint='x', state_timeout_s=5.0).resolved(
                                  load_robot('panda')))
    steps = []
    add = ctl.scheduler.add_chunk
    ctl.scheduler.add_chunk = lambda step, chunk: steps.append(step) or add(step, chunk)
    ctl.on_joint_state(time.monotonic(), ALL_JOINT_NAMES, np.r_[HOME_JOINT_POS, 0.04])
    worker = PolicyWorker(ctl)
    worker.start()
    ctl.enable(time.monotonic())
    worker.new_episode()
    time.sleep(0.5)
    ctl.disable()
    worker.stop()
    assert len(steps) >= 5
    assert steps == sorted(set(steps)), steps
    # 30 ms per call at 20 ms steps: every call overruns a step, which runs late, not never.
    # The steps a call skips are those that passed during it (more on a loaded machine).
    skipped = int(np.ceil(max(backend.durations) / 0.02)) + 1
    assert max(np.diff(steps)) <= max(skipped, 3), (steps, backend.durations)


def test_periodic_thread_takes_a_real_time_priority_or_says_why_not():
    policies = []
    loop = PeriodicThread(0.01, lambda now: policies.append(os.sched_getscheduler(0)),
                          'test-rt', priority=10)
    loop.start()
    time.sleep(0.05)
    loop.stop()
    # Root or CAP_SYS_NICE: SCHED_FIFO; elsewhere a clear reason and normal scheduling.
    expected = os.SCHED_OTHER if loop.priority_error else os.SCHED_FIFO
    assert policies and set(policies) == {expected}
    # It polls the clock before each deadline only under SCHED_FIFO.
    assert loop.spin_s == (0.0 if loop.priority_error else SPIN_S)
    assert loop.priority_error == '' or 'SCHED_FIFO' in loop.priority_error
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # only the loop thread changed
    with pytest.raises(ValueError, match='priority'):
        PeriodicThread(0.01, lambda now: None, 'test-rt', priority=100)
