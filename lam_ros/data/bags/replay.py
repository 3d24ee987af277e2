"""
Replaying a recorded episode's joint commands at their original timing (no ROS).

:func:`load_episode` finds an episode's commands in a dataset; :class:`ReplayPlan` decides
when the replay may start (a subscriber, and an arm close to the first command: a replay must
not jump) and which commands are due as time passes. ``lam-ros dataset replay`` and
``replay_node`` both use them; only the publishing is ROS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence, Tuple

import numpy as np


@dataclass
class ReplaySettings:
    """How a replay starts and how fast it plays."""

    speed: float = 1.0
    """Time scale: 2.0 plays twice as fast."""
    check_start_state: bool = True
    """Refuse to start far from the first command."""
    max_start_deviation: float = 0.1
    """Largest allowed |state - first command| per joint (rad, or m for fingers)."""
    wait_timeout_s: float = 5.0
    """How long to wait for a subscriber / joint state (s)."""

    def __post_init__(self) -> None:
        """Reject settings a replay cannot run with."""
        if not 0.01 <= self.speed <= 10.0:
            raise ValueError(f'speed must be in [0.01, 10], got {self.speed}')
        if not (self.max_start_deviation > 0 and self.wait_timeout_s > 0):
            raise ValueError('max_start_deviation and wait_timeout_s must be positive')


class ReplayPlan:
    """One episode's command stream and the rules for playing it."""

    def __init__(self, times_ns: Any, commands: Any, joint_names: Sequence[str],
                 settings: Optional[ReplaySettings] = None) -> None:
        """Play ``commands`` (N, joints) stamped ``times_ns`` (N,), in ``joint_names`` order."""
        times_ns = np.asarray(times_ns, dtype=np.int64)
        commands = np.asarray(commands, dtype=np.float64)
        if commands.ndim != 2 or commands.shape != (times_ns.size, len(joint_names)) \
                or times_ns.size == 0:
            raise ValueError(f'need (N, {len(joint_names)}) commands with N > 0 times, got '
                             f'{commands.shape} commands and {times_ns.size} times')
        if not np.all(np.isfinite(commands)) or np.any(np.diff(times_ns) < 0):
            raise ValueError('commands must be finite and their times ascending')
        self.settings = settings or ReplaySettings()
        self.joint_names = list(joint_names)
        self.commands = commands
        self.times_s = (times_ns - times_ns[0]) * 1e-9 / self.settings.speed
        gaps = np.diff(self.times_s)
        self.point_time_s = float(np.median(gaps)) if gaps.size else 0.05
        """How long a trajectory point should take: the typical gap to the next command."""
        self.sent = 0

    @property
    def done(self) -> bool:
        """Return True once every command was handed out."""
        return self.sent >= len(self.commands)

    def start_check(self, waited_s: float, subscribers: int,
                    state: Optional[np.ndarray]) -> Tuple[bool, str]:
        """
        Return (ready, error): may the replay start, and if it never will, why.

        ``state`` is the latest joint state in ``joint_names`` order (None before one).
        """
        timeout = self.settings.wait_timeout_s
        if subscribers == 0:
            return False, (f'no subscriber on the command topic after {timeout:g} s'
                           if waited_s > timeout else '')
        if not self.settings.check_start_state:
            return True, ''
        if state is None:
            return False, (f'no joint state after {timeout:g} s (disable the start check to '
                           'play without one)' if waited_s > timeout else '')
        deviation = np.abs(np.asarray(state, dtype=np.float64) - self.commands[0])
        worst = int(np.argmax(deviation))
        if deviation[worst] > self.settings.max_start_deviation:
            return False, (f'{self.joint_names[worst]} is {deviation[worst]:.3f} from the first '
                           f'command (limit max_start_deviation='
                           f'{self.settings.max_start_deviation:g}); move the arm to the '
                           'episode start first')
        return True, ''

    def due(self, elapsed_s: float) -> list[np.ndarray]:
        """Return the commands due ``elapsed_s`` after the start that were not handed out."""
        end = int(np.searchsorted(self.times_s, elapsed_s + 1e-12, side='right'))
        out = list(self.commands[self.sent:end])
        self.sent = max(self.sent, end)
        return out


def load_episode(source: str, episode: str, mapping: Any = None
                 ) -> Tuple[np.ndarray, np.ndarray, Any]:
    """
    Return ``(times_ns, commands, mapping)`` of episode ``episode`` of ``source``.

    ``mapping`` is a TopicMapping (None: the dataset's own topics). A missing episode is a
    ValueError listing the ones there are; an unusable one raises bags.reader.EpisodeError.
    """
    from lam_ros.data.bags.reader import find_episodes, mapping_for_source, read_commands
    mapping = mapping if mapping is not None else mapping_for_source(source)
    entries = {e.name: e for e in find_episodes(source)}
    if episode not in entries:
        raise ValueError(f'no episode {episode!r} in {source}; it has {sorted(entries)}')
    times_ns, commands = read_commands(entries[episode], mapping)
    return times_ns, commands, mapping
