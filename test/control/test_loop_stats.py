"""Tick and latency statistics: on time against deadlines, given-up deadlines, jitter."""

import math

from lam_ros.control.loop_stats import (
    LatencyStats, ON_TIME_TOLERANCE, summarize_ticks, TickStats)
import numpy as np
import pytest

P = 0.001


def test_on_time_is_done_within_half_a_period_of_the_deadline():
    deadlines = np.arange(10) * P
    done = deadlines + 0.1 * P
    done[3] = deadlines[3] + ON_TIME_TOLERANCE * P  # exactly at the tolerance: on time
    done[6] = deadlines[6] + 0.6 * P  # past it: late
    summary = summarize_ticks(deadlines + 0.05 * P, P, deadlines, done)
    assert summary.late == 1 and summary.missed == 0
    assert summary.on_time_fraction == pytest.approx(0.9)
    assert summary.lateness_p50_s == pytest.approx(0.1 * P)
    assert 0.1 * P < summary.lateness_p99_s <= 0.6 * P


def test_given_up_deadlines_count_as_late():
    # Ticks for deadlines 0, 1, 2, 5, 6: deadlines 3 and 4 had no tick at all.
    deadlines = np.array([0, 1, 2, 5, 6]) * P
    summary = summarize_ticks(deadlines, P, deadlines, deadlines + 0.01 * P)
    assert summary.missed == 2 and summary.late == 2
    assert summary.on_time_fraction == pytest.approx(5 / 7)


def test_without_deadlines_long_intervals_are_late():
    starts = [0.0, P, 2 * P, 3.6 * P, 4.6 * P]
    summary = summarize_ticks(starts, P)
    assert summary.late == 1 and summary.on_time_fraction == pytest.approx(0.75)
    assert math.isnan(summary.lateness_p99_s)
    assert summary.jitter_p99_s == pytest.approx(0.6 * P, rel=0.05)


def test_deadlines_must_match_the_ticks():
    with pytest.raises(ValueError, match='must match'):
        summarize_ticks([0.0, P, 2 * P], P, [0.0, P], [0.0, P])


def test_tick_stats_judges_finished_ticks_against_their_deadlines():
    stats = TickStats(P)
    for k in range(5):
        stats.record(k * P + 1e-5)
        stats.finish(k * P, k * P + (0.9 * P if k == 2 else 2e-5))
    stats.record(5 * P)  # in progress: not judged yet
    summary = stats.summary()
    assert stats.total_ticks == 6 and summary.ticks == 5
    assert summary.late == 1 and summary.on_time_fraction == pytest.approx(0.8)
    stats.clear()
    assert stats.summary().ticks == 0 and stats.summary().on_time_fraction == 1.0
    stats.finish(0.0, 0.0)  # nothing recorded: nothing to finish
    assert stats.summary().ticks == 0


def test_tick_stats_without_finish_falls_back_to_intervals():
    stats = TickStats(P)
    for t in (0.0, P, 2 * P, 4 * P):
        stats.record(t)
    summary = stats.summary()
    assert summary.ticks == 4 and summary.late == 1 and summary.missed == 0


def test_latency_percentiles():
    stats = LatencyStats(window=3)
    assert math.isnan(stats.percentile(50))
    for value in (5.0, 1.0, 2.0, 3.0):
        stats.record(value)
    assert stats.count == 4 and stats.percentile(50) == 2.0
