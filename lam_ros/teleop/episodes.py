"""
The hands-free episode loop: reset, start, wait for success or a timeout, stop; N times.

ROS-free: ``demo_runner_node`` calls the Trigger services this loop asks for and reports
their answers and each ``/task_success`` value back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Mapping, Optional


class EpisodeFailed(RuntimeError):
    """A service the episode loop relies on answered with a failure."""


@dataclass
class EpisodeResult:
    """What happened in one recorded episode."""

    index: int
    """0-based episode number of this run."""
    success: bool
    """The task succeeded before the timeout."""
    duration_s: float
    """Node-clock seconds from start_episode to stop_episode."""
    recorder_message: str = ''
    """The recorder's answer to stop_episode (episode name, outcome, message count)."""
    start_lag_s: float = 0.0
    """Node-clock seconds from the last reset's answer to start_episode's answer: how much
    of the new scene an operator could act on before the recording began."""


class EpisodeLoop:
    """
    The ROS-free episode state machine: which service is due next, and when.

    Drive it with ``next_call(now_s)`` (returns 'sim_reset', 'teleop_reset', 'start',
    'stop' or None) and report each answer with ``call_done``, and each ``/task_success``
    value with ``on_success``. Times are in seconds of one clock.
    """

    def __init__(self, episodes: int, episode_timeout_s: float, settle_s: float = 0.5,
                 reset_settle_s: float = 0.2,
                 resets: tuple = ('sim_reset', 'teleop_reset')) -> None:
        """Plan ``episodes`` episodes; ``resets`` are the calls made before each start."""
        if episodes < 1:
            raise ValueError(f'episodes must be >= 1, got {episodes}')
        self.episodes, self.timeout_s = episodes, episode_timeout_s
        self.settle_s, self.reset_settle_s, self.resets = settle_s, reset_settle_s, resets
        self.results: List[EpisodeResult] = []
        self._plan = list(resets)
        self._phase = 'calls'  # resets -> 'settle_resets' (then start) -> 'recording' (then stop)
        self._pending: Optional[str] = None
        self._since_s = 0.0
        self._success_s: Optional[float] = None
        self._seen_false = False
        self._reset_s: Optional[float] = None
        self._start_lag_s = 0.0

    @property
    def done(self) -> bool:
        """Return True once every episode has been stopped."""
        return len(self.results) >= self.episodes

    @property
    def index(self) -> int:
        """0-based number of the current episode."""
        return len(self.results)

    def next_call(self, now_s: float) -> Optional[str]:
        """Return the service call due at ``now_s`` (then await its answer), or None."""
        if self.done or self._pending is not None:
            return None
        if self._phase == 'calls' and self._plan:
            self._pending = self._plan.pop(0)
        elif self._phase == 'calls':
            self._phase, self._since_s = 'settle_resets', now_s
        if self._phase == 'settle_resets' and now_s - self._since_s >= self.reset_settle_s:
            self._pending = 'start'
        elif self._phase == 'recording':
            succeeded = self._success_s is not None and \
                now_s - self._success_s >= self.settle_s
            if succeeded or now_s - self._since_s >= self.timeout_s:
                self._pending = 'stop'
        return self._pending

    def call_done(self, ok: bool, message: str, now_s: float) -> Optional[EpisodeResult]:
        """Take the answer to the pending call; return the result when it ended an episode."""
        action, self._pending = self._pending, None
        if action is None:
            raise RuntimeError('call_done without a pending call')
        if not ok:
            raise EpisodeFailed(f'{action} failed in episode {self.index + 1}: {message}')
        if action == 'start':
            self._start_lag_s = now_s - self._reset_s if self.resets else 0.0
            self._phase, self._since_s = 'recording', now_s
            self._success_s, self._seen_false = None, False
            return None
        if action == 'stop':
            result = EpisodeResult(self.index, self._success_s is not None,
                                   now_s - self._since_s, message, self._start_lag_s)
            self.results.append(result)
            self._phase, self._plan = 'calls', list(self.resets)
            return result
        if not self._plan:  # the last reset answered: the settle time counts from here
            self._phase, self._since_s = 'settle_resets', now_s
        if action == self.resets[0]:
            self._reset_s = now_s
        return None

    def on_success(self, value: bool, now_s: float) -> None:
        """Take one /task_success value received at ``now_s``."""
        if self._phase != 'recording' or self._pending == 'stop':
            return
        # A true must follow a false seen in this episode: a stale true from before the
        # reset can still be in flight when the episode starts.
        if not value:
            self._seen_false = True
        elif self._seen_false and self._success_s is None:
            self._success_s = now_s


class ServiceWait:
    """
    Wall-clock patience of the runner: services must appear and answer within ``timeout_s``.

    Every check raises EpisodeFailed with what to do once the wait is over.
    """

    def __init__(self, timeout_s: float, start_wall_s: float) -> None:
        """Count the start-up wait from ``start_wall_s``."""
        if not timeout_s > 0:
            raise ValueError(f'timeout_s must be positive, got {timeout_s}')
        self.timeout_s = float(timeout_s)
        self._start_s = float(start_wall_s)
        self._since_s = float(start_wall_s)

    def ready(self, wall_s: float, missing: Mapping[str, str], recorder_alive: bool,
              status_topic: str = '') -> bool:
        """Return True once no service is ``missing`` (name: parameter), the recorder up."""
        waited_s = wall_s - self._start_s
        if missing and waited_s > self.timeout_s:
            raise EpisodeFailed(f'services {list(missing)} are not available after '
                                f'{waited_s:.0f} s; start the nodes that offer them, or set '
                                f'the parameters {list(missing.values())}')
        if not missing and not recorder_alive and waited_s > self.timeout_s:
            raise EpisodeFailed(f'no message on {status_topic} after {waited_s:.0f} s: the '
                                'recorder is not running or (use_sim_time) receives no /clock')
        return not missing and recorder_alive

    def restart(self, wall_s: float) -> None:
        """Start timing a new wait (a call is due, or was just sent)."""
        self._since_s = float(wall_s)

    def check(self, wall_s: float, service: str, param: str, answered: bool) -> None:
        """Raise when ``service`` (named by ``param``) was not found or did not answer."""
        waited_s = wall_s - self._since_s
        if waited_s <= self.timeout_s:
            return
        if not answered:
            raise EpisodeFailed(f'service {service} is not available after {waited_s:.0f} s; '
                                f'start the node that offers it, or set the {param} parameter')
        raise EpisodeFailed(f'service {service} did not answer within {waited_s:.0f} s')
