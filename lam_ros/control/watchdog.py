"""Input freshness: a teleop device that stops talking must stop moving the arm."""

from __future__ import annotations

import math


class InputWatch:
    """Remember when an input last arrived and say whether it is still fresh."""

    def __init__(self, timeout_s: float) -> None:
        """Create a watch that calls input older than ``timeout_s`` seconds stale."""
        if not timeout_s > 0.0 or not math.isfinite(timeout_s):
            raise ValueError(f'timeout_s must be a positive number of seconds, got {timeout_s}')
        self.timeout_s = float(timeout_s)
        self._last_s: float | None = None

    def touch(self, now_s: float) -> None:
        """Record that an input arrived at ``now_s``."""
        self._last_s = float(now_s)

    def clear(self) -> None:
        """Forget the last input, so the watch reports stale until the next one."""
        self._last_s = None

    def age_s(self, now_s: float) -> float:
        """Seconds since the last input (inf before the first one)."""
        return math.inf if self._last_s is None else float(now_s) - self._last_s

    def fresh(self, now_s: float) -> bool:
        """Return True when the last input is younger than the timeout."""
        return self.age_s(now_s) <= self.timeout_s
