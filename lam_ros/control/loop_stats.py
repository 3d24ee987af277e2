"""
Timing statistics of a periodic loop and of a latency, over a sliding window (numpy only).

The inference node reports them on ``~/stats``; the benchmarks compute the same figures for a
bare rclpy timer, so both sides of a comparison are measured the same way.

- loop rate: ticks per second over the window;
- jitter: ``|interval - period|`` between consecutive tick starts, p50 and p99;
- late ticks: intervals longer than 1.5 periods (a tick started more than half a period late,
  or a tick was skipped);
- on time: the share of ticks that were not late.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
import math
from typing import Deque, Iterable

import numpy as np


@dataclass
class TickSummary:
    """Figures of a periodic loop over a window of ticks."""

    ticks: int
    """Tick starts in the window."""
    rate_hz: float
    """Ticks per second over the window."""
    late: int
    """Intervals longer than 1.5 periods."""
    on_time_fraction: float
    """1 - late / intervals (1.0 with fewer than two ticks)."""
    jitter_p50_s: float
    """Median of |interval - period| (s)."""
    jitter_p99_s: float
    """99th percentile of |interval - period| (s)."""


def summarize_ticks(starts_s: Iterable[float], period_s: float) -> TickSummary:
    """Summarise tick start times (s, increasing) of a loop meant to run every ``period_s``."""
    t = np.asarray(list(starts_s), dtype=np.float64)
    if t.size < 2:
        return TickSummary(int(t.size), 0.0, 0, 1.0, 0.0, 0.0)
    intervals = np.diff(t)
    span = t[-1] - t[0]
    late = int(np.count_nonzero(intervals > 1.5 * period_s))
    jitter = np.abs(intervals - period_s)
    return TickSummary(
        ticks=int(t.size), rate_hz=float((t.size - 1) / span) if span > 0 else math.inf,
        late=late, on_time_fraction=1.0 - late / intervals.size,
        jitter_p50_s=float(np.percentile(jitter, 50)),
        jitter_p99_s=float(np.percentile(jitter, 99)))


class TickStats:
    """Remember the last ``window`` tick start times of a loop with period ``period_s``."""

    def __init__(self, period_s: float, window: int = 10000) -> None:
        """Create an empty window."""
        if not period_s > 0.0:
            raise ValueError(f'period_s must be positive, got {period_s}')
        self.period_s = float(period_s)
        self._starts: Deque[float] = deque(maxlen=int(window))
        self.total_ticks = 0

    def record(self, start_s: float) -> None:
        """Record one tick start (s)."""
        self._starts.append(float(start_s))
        self.total_ticks += 1

    def clear(self) -> None:
        """Forget the window (after a pause, whose gap is no late tick)."""
        self._starts.clear()

    def summary(self) -> TickSummary:
        """Summarise the window."""
        return summarize_ticks(list(self._starts), self.period_s)


class LatencyStats:
    """A sliding window of durations (s) with percentiles."""

    def __init__(self, window: int = 1000) -> None:
        """Create an empty window."""
        self._values: Deque[float] = deque(maxlen=int(window))
        self.count = 0

    def record(self, duration_s: float) -> None:
        """Record one duration (s)."""
        self._values.append(float(duration_s))
        self.count += 1

    def percentile(self, q: float) -> float:
        """Return the duration (s) below which q % of the window lies (nan when empty)."""
        if not self._values:
            return math.nan
        return float(np.percentile(np.fromiter(self._values, dtype=np.float64), q))
