"""
Timing statistics of a periodic loop and of a latency, over a sliding window (numpy only).

The inference node reports them on ``~/stats``; the benchmarks compute the same figures for a
bare rclpy timer, so both sides of a comparison are measured the same way.

- loop rate: ticks per second over the window;
- jitter: ``|interval - period|`` between consecutive tick starts, p50 and p99;
- on time: a tick is on time when it was done (its command published) within
  ``ON_TIME_TOLERANCE`` periods of its deadline on the loop's own grid; a deadline the loop gave
  up (no tick at all) is late. ``on_time_fraction`` = on-time ticks / (ticks + deadlines given
  up); ``late`` counts the rest; lateness (done - deadline) p50/p99 is reported too;
- without deadlines (a loop that knows none) a tick is late when its interval from the previous
  tick start exceeds ``1 + ON_TIME_TOLERANCE`` periods.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
import math
from typing import Deque, Iterable, List, Optional, Tuple

import numpy as np

ON_TIME_TOLERANCE = 0.5
"""How late (in periods) a tick may be done after its deadline and still be on time."""


@dataclass
class TickSummary:
    """Figures of a periodic loop over a window of ticks."""

    ticks: int
    """Tick starts in the window."""
    rate_hz: float
    """Ticks per second over the window."""
    late: int
    """Ticks done more than ON_TIME_TOLERANCE periods after their deadline, plus deadlines
    given up (with deadlines); else intervals longer than 1 + ON_TIME_TOLERANCE periods."""
    on_time_fraction: float
    """Share of deadlines met (1.0 with fewer than two ticks)."""
    jitter_p50_s: float
    """Median of |interval - period| (s)."""
    jitter_p99_s: float
    """99th percentile of |interval - period| (s)."""
    lateness_p50_s: float = math.nan
    """Median of done - deadline (s); nan without deadlines."""
    lateness_p99_s: float = math.nan
    """99th percentile of done - deadline (s); nan without deadlines."""
    missed: int = 0
    """Deadlines given up in the window (no tick ran for them)."""


def summarize_ticks(starts_s: Iterable[float], period_s: float,
                    deadlines_s: Optional[Iterable[float]] = None,
                    done_s: Optional[Iterable[float]] = None) -> TickSummary:
    """
    Summarise a loop meant to run every ``period_s``.

    starts_s: tick start times (s, increasing). deadlines_s and done_s (same length, both or
    neither): each tick's deadline on the loop's grid and the time it was done.
    """
    t = np.asarray(list(starts_s), dtype=np.float64)
    if t.size < 2:
        return TickSummary(int(t.size), 0.0, 0, 1.0, 0.0, 0.0)
    intervals = np.diff(t)
    span = t[-1] - t[0]
    jitter = np.abs(intervals - period_s)
    rate = float((t.size - 1) / span) if span > 0 else math.inf
    figures = {'ticks': int(t.size), 'rate_hz': rate,
               'jitter_p50_s': float(np.percentile(jitter, 50)),
               'jitter_p99_s': float(np.percentile(jitter, 99))}
    if deadlines_s is None or done_s is None:
        late = int(np.count_nonzero(intervals > (1.0 + ON_TIME_TOLERANCE) * period_s))
        return TickSummary(late=late, on_time_fraction=1.0 - late / intervals.size, **figures)
    deadline = np.asarray(list(deadlines_s), dtype=np.float64)
    done = np.asarray(list(done_s), dtype=np.float64)
    if deadline.shape != t.shape or done.shape != t.shape:
        raise ValueError(f'deadlines ({deadline.size}) and done times ({done.size}) must match '
                         f'the tick starts ({t.size})')
    lateness = done - deadline
    # Deadlines lie on one grid: a gap of n periods between consecutive ticks gave n - 1 up.
    missed = int(np.maximum(np.rint(np.diff(deadline) / period_s) - 1.0, 0.0).sum())
    on_time = int(np.count_nonzero(lateness <= ON_TIME_TOLERANCE * period_s))
    total = t.size + missed
    return TickSummary(late=total - on_time, on_time_fraction=on_time / total,
                       lateness_p50_s=float(np.percentile(lateness, 50)),
                       lateness_p99_s=float(np.percentile(lateness, 99)), missed=missed,
                       **figures)


class TickStats:
    """
    Remember the last ``window`` ticks of a loop with period ``period_s``.

    :meth:`record` takes a tick's start; :meth:`finish` (from the loop, right after the tick)
    adds its deadline and the time it was done. The summary uses deadlines once every tick in
    the window has them, tick intervals otherwise.
    """

    def __init__(self, period_s: float, window: int = 10000) -> None:
        """Create an empty window."""
        if not period_s > 0.0:
            raise ValueError(f'period_s must be positive, got {period_s}')
        self.period_s = float(period_s)
        self._ticks: Deque[Tuple[float, float, float]] = deque(maxlen=int(window))
        self._pending: Optional[float] = None
        self.total_ticks = 0

    def record(self, start_s: float) -> None:
        """Record one tick start (s)."""
        if self._pending is not None:  # the previous tick was never finished
            self._ticks.append((self._pending, math.nan, math.nan))
        self._pending = float(start_s)
        self.total_ticks += 1

    def finish(self, deadline_s: float, done_s: float) -> None:
        """Complete the tick recorded last with its deadline and end (no-op without one)."""
        start, self._pending = self._pending, None
        if start is not None:
            self._ticks.append((start, float(deadline_s), float(done_s)))

    def window(self) -> List[Tuple[float, float, float]]:
        """Return the finished ticks in the window as (start, deadline, done); nan if unknown."""
        return list(self._ticks)

    def clear(self) -> None:
        """Forget the window (after a pause, whose gap is no late tick)."""
        self._ticks.clear()
        self._pending = None

    def summary(self) -> TickSummary:
        """Summarise the window."""
        ticks = list(self._ticks)
        if self._pending is not None:
            ticks.append((self._pending, math.nan, math.nan))
        if not ticks:
            return summarize_ticks([], self.period_s)
        start, deadline, done = (np.asarray(c) for c in zip(*ticks))
        # The tick in progress has no end yet; it is judged once it has.
        if self._pending is not None and len(ticks) > 1 and not math.isnan(deadline[-2]):
            start, deadline, done = start[:-1], deadline[:-1], done[:-1]
        if np.isnan(deadline).any():
            return summarize_ticks(start, self.period_s)
        return summarize_ticks(start, self.period_s, deadline, done)


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
