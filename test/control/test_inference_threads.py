"""The inference loops as threads: a steady periodic tick and the policy on its step grid."""

import os
import time

from lam_ros.control.inference import InferenceConfig, InferenceController
from lam_ros.control.inference_threads import PeriodicThread, PolicyWorker
from lam_ros.control.limits import load_urdf_limits
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
    """A policy taking ``delay_s`` per call; records which steps it served."""

    def __init__(self, config, delay_s):
        self.config, self.delay_s = config, delay_s

    def predict_chunk(self, obs, mask):
        time.sleep(self.delay_s)
        return np.tile(HOME_JOINT_POS, (self.config.chunk_size, 1))


def test_policy_worker_tags_chunks_with_their_steps_and_skips_overrun_ones():
    policy = PolicyConfig(joint_names=JOINT_NAMES, obs_spec={'joint_pos': (8,)}, chunk_size=8,
                          control_rate_hz=50.0)
    ctl = InferenceController(SlowBackend(policy, 0.03), load_urdf_limits(panda_urdf_path()),
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
    # 30 ms per call at 20 ms steps: every call overruns one step, which runs late, not never.
    assert max(np.diff(steps)) <= 3


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
    assert loop.priority_error == '' or 'SCHED_FIFO' in loop.priority_error
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # only the loop thread changed
    with pytest.raises(ValueError, match='priority'):
        PeriodicThread(0.01, lambda now: None, 'test-rt', priority=100)
