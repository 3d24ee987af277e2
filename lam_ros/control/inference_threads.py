"""
The two loops of the inference node as threads: the policy at its rate, the commands at theirs.

``PeriodicThread`` calls a function on an absolute-deadline grid (``start + k * period``) from
a steady clock: a late tick does not shift the ticks after it, and a deadline already more
than half a period past when the loop gets to it is given up (its tick would be late) rather
than run in a burst. The loop sleeps until ``spin_s`` before each deadline and polls the
clock from there (releasing the GIL between polls), because a sleeping thread wakes up late
by a variable amount on a busy machine. It records each tick's deadline and the time the tick
returned (after the command was published) in a
:class:`~lam_ros.control.loop_stats.TickStats` when given one. ``PolicyWorker`` runs
:meth:`InferenceController.policy_step` on the policy's own step grid, so each chunk is tagged
with the step whose observation it saw; after a slow forward pass it runs the step it overran
into at once and skips the ones it missed entirely.
"""

from __future__ import annotations

import gc
import math
import os
import sys
import threading
import time
from typing import Callable, Optional

from lam_ros.control.loop_stats import TickStats

SPIN_S = 0.0002
"""Default time before each deadline from which the control loop polls the clock (s)."""


def _sleep_until(deadline_s: float, clock: Callable[[], float], stop: threading.Event) -> bool:
    """Sleep until ``deadline_s`` on ``clock``; False when ``stop`` was set meanwhile."""
    remaining = deadline_s - clock()
    if remaining > 0.0:
        return not stop.wait(remaining)
    return not stop.is_set()


def set_realtime_priority(priority: int) -> str:
    """Run the calling thread under SCHED_FIFO ``priority`` (1..99); return '' or why not."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except (AttributeError, OSError) as err:
        return (f'cannot run at SCHED_FIFO priority {priority}: {err}; normal scheduling '
                '(grant CAP_SYS_NICE or an rtprio limit)')
    return ''


def _spin_until(deadline_s: float, clock: Callable[[], float]) -> None:
    """Poll ``clock`` until ``deadline_s``, yielding the GIL and the CPU between polls."""
    while clock() < deadline_s:
        time.sleep(0)


class PeriodicThread:
    """Call ``tick(now_s)`` every ``period_s`` in a daemon thread until :meth:`stop`."""

    def __init__(self, period_s: float, tick: Callable[[float], None], name: str,
                 clock: Callable[[], float] = time.monotonic,
                 on_error: Optional[Callable[[BaseException], None]] = None,
                 priority: int = 0, spin_s: Optional[float] = None,
                 stats: Optional[TickStats] = None) -> None:
        """
        Prepare the thread; :meth:`start` runs it.

        priority 1..99 runs the thread under SCHED_FIFO (Linux; needs CAP_SYS_NICE or an
        rtprio limit), as ros2_control's own control loop does; 0 keeps normal scheduling.
        spin_s (0 .. period_s / 2): the loop sleeps until that long before a deadline and
        polls the clock from there; None: min(SPIN_S, period_s / 4) when the thread runs under
        SCHED_FIFO, else 0 (under normal scheduling a thread that polls is treated as a
        CPU hog and loses the wake-up preference a sleeping thread has, so it comes out later).
        stats: where each tick's deadline and end are recorded (:meth:`TickStats.finish`).
        """
        if not (period_s > 0.0 and math.isfinite(period_s)):
            raise ValueError(f'period_s must be a positive number, got {period_s}')
        if not 0 <= int(priority) <= 99:
            raise ValueError(f'priority must be 0 (normal) or 1..99 (SCHED_FIFO), got {priority}')
        if spin_s is not None and not 0.0 <= spin_s <= 0.5 * period_s:
            raise ValueError(f'spin_s must lie in [0, period_s / 2] = [0, {0.5 * period_s:g}] '
                             f's, got {spin_s}')
        self.spin_s = spin_s
        """Polling time before each deadline (s); None until the thread has started."""
        self.stats = stats
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
        """
        Start ticking (after the thread has taken its priority).

        Two process-wide settings serve the loop: the interpreter hands the GIL over at
        least every period_s / 20 (another Python thread holds it for up to 5 ms by default),
        and the objects that exist now are frozen out of garbage collection (start-up made
        most of them; full collections over them would pause every thread).
        """
        sys.setswitchinterval(min(sys.getswitchinterval(), max(self.period_s / 20.0, 2e-5)))
        gc.freeze()
        self._thread.start()
        self._started.wait(5.0)

    def stop(self, timeout_s: float = 2.0) -> None:
        """Stop ticking and wait for the thread."""
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout_s)

    def _set_priority(self) -> None:
        if self.priority:
            error = set_realtime_priority(self.priority)
            self.priority_error = f'the control loop {error}' if error else ''
        if self.spin_s is None:
            realtime = os.sched_getscheduler(0) == os.SCHED_FIFO if self.priority else False
            self.spin_s = min(SPIN_S, self.period_s / 4.0) if realtime else 0.0
        self._started.set()

    def _run(self) -> None:
        self._set_priority()
        clock, period, spin, stats = self._clock, self.period_s, self.spin_s, self.stats
        start = clock()
        k = 0
        while _sleep_until(start + k * period - spin, clock, self._stop):
            deadline = start + k * period
            if spin:
                _spin_until(deadline, clock)
            now = clock()
            try:
                self._tick(now)
            except Exception as err:  # noqa: B902 - reported, the loop must not die silently
                if self._on_error is not None:
                    self._on_error(err)
                return
            if stats is not None:
                stats.finish(deadline, clock())
            k += 1
            # Deadlines already more than half a period past (the tick would be late) are
            # given up: the next tick keeps to the grid instead of following in a burst.
            behind = math.floor((clock() - start) / period - 0.5)
            if behind >= k:
                self.skipped += behind - k + 1
                k = behind + 1


class PolicyWorker:
    """Run ``policy_step(step)`` at each step of the controller's policy clock."""

    def __init__(self, controller, name: str = 'lam_ros-policy',
                 on_error: Optional[Callable[[BaseException], None]] = None,
                 priority: int = 0) -> None:
        """
        Drive ``controller`` (an InferenceController); :meth:`start` runs the thread.

        priority 1..99: the thread runs under SCHED_FIFO (meant for a policy in another
        process, where this thread only passes observations and chunks: preempted while it
        holds the GIL or the controller's lock, it would hold up the control loop).
        """
        self.controller = controller
        self.priority = int(priority)
        self.priority_error = ''
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
        if self.priority:
            self.priority_error = set_realtime_priority(self.priority)
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
