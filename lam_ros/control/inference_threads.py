"""
The two loops of the inference node as threads: the policy at its rate, the commands at theirs.

``PeriodicThread`` calls a function on an absolute-deadline grid (``start + k * period``) from
a steady clock: a late tick does not shift the ticks after it, and a tick more than a whole
period late is skipped rather than run in a burst. ``PolicyWorker`` runs
:meth:`InferenceController.policy_step` on the policy's own step grid, so each chunk is tagged
with the step whose observation it saw; after a slow forward pass it runs the step it overran
into at once and skips the ones it missed entirely.
"""

from __future__ import annotations

import math
import os
import threading
import time
from typing import Callable, Optional


def _sleep_until(deadline_s: float, clock: Callable[[], float], stop: threading.Event) -> bool:
    """Sleep until ``deadline_s`` on ``clock``; False when ``stop`` was set meanwhile."""
    remaining = deadline_s - clock()
    if remaining > 0.0:
        return not stop.wait(remaining)
    return not stop.is_set()


class PeriodicThread:
    """Call ``tick(now_s)`` every ``period_s`` in a daemon thread until :meth:`stop`."""

    def __init__(self, period_s: float, tick: Callable[[float], None], name: str,
                 clock: Callable[[], float] = time.monotonic,
                 on_error: Optional[Callable[[BaseException], None]] = None,
                 priority: int = 0) -> None:
        """
        Prepare the thread; :meth:`start` runs it.

        priority 1..99 runs the thread under SCHED_FIFO (Linux; needs CAP_SYS_NICE or an
        rtprio limit), as ros2_control's own control loop does; 0 keeps normal scheduling.
        """
        if not (period_s > 0.0 and math.isfinite(period_s)):
            raise ValueError(f'period_s must be a positive number, got {period_s}')
        if not 0 <= int(priority) <= 99:
            raise ValueError(f'priority must be 0 (normal) or 1..99 (SCHED_FIFO), got {priority}')
        self.priority = int(priority)
        self.priority_error = ''
        """Why the real-time priority could not be set ('' when it was, or not asked for)."""
        self._started = threading.Event()
        self.period_s = float(period_s)
        self._tick, self._clock, self._on_error = tick, clock, on_error
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.skipped = 0
        """Ticks dropped because the loop was more than one period late."""

    def start(self) -> None:
        """Start ticking (after the thread has taken its priority)."""
        self._thread.start()
        self._started.wait(5.0)

    def stop(self, timeout_s: float = 2.0) -> None:
        """Stop ticking and wait for the thread."""
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout_s)

    def _set_priority(self) -> None:
        if self.priority:
            try:
                os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(self.priority))
            except (AttributeError, OSError) as err:
                self.priority_error = (f'cannot run the control loop at SCHED_FIFO priority '
                                       f'{self.priority}: {err}; it runs at normal priority '
                                       '(grant CAP_SYS_NICE or an rtprio limit)')
        self._started.set()

    def _run(self) -> None:
        self._set_priority()
        start = self._clock()
        k = 0
        while _sleep_until(start + k * self.period_s, self._clock, self._stop):
            now = self._clock()
            try:
                self._tick(now)
            except Exception as err:  # noqa: B902 - reported, the loop must not die silently
                if self._on_error is not None:
                    self._on_error(err)
                return
            k += 1
            # A tick that overran into a later period gives that period up: the next tick keeps
            # to the grid instead of following at once.
            behind = math.floor((self._clock() - start) / self.period_s)
            if behind >= k:
                self.skipped += behind - k + 1
                k = behind + 1


class PolicyWorker:
    """Run ``policy_step(step)`` at each step of the controller's policy clock."""

    def __init__(self, controller, name: str = 'lam_ros-policy',
                 on_error: Optional[Callable[[BaseException], None]] = None) -> None:
        """Drive ``controller`` (an InferenceController); :meth:`start` runs the thread."""
        self.controller = controller
        self._on_error = on_error
        self._stop = threading.Event()
        self._episode = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.overruns = 0
        """Policy steps skipped because forward passes overran them."""

    def start(self) -> None:
        """Start the thread (it idles until :meth:`new_episode`)."""
        self._thread.start()

    def new_episode(self) -> None:
        """Start over at policy step 0 (call after ``controller.enable``)."""
        self._episode.set()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the thread and wait for it (at most one forward pass)."""
        self._stop.set()
        self._episode.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        ctl = self.controller
        clock = ctl.clock
        try:
            while not self._stop.is_set():
                self._episode.wait()
                self._episode.clear()
                step = 0
                while not self._stop.is_set() and not self._episode.is_set() and ctl.enabled:
                    if not _sleep_until(ctl.scheduler.step_time(step), clock, self._stop):
                        return
                    if self._episode.is_set():
                        break
                    ctl.policy_step(step)
                    # Overran into a later step: run that one now, on a newer observation.
                    current = ctl.scheduler.step_at(clock())
                    if current > step + 1:
                        self.overruns += current - step - 1
                    step = max(step + 1, current)
        except Exception as err:  # noqa: B902 - reported, the node decides to stop
            if self._on_error is not None:
                self._on_error(err)
