"""
Replaying a recorded episode's joint commands at their original timing (no ROS).

:func:`load_episode` finds an episode's commands in a dataset; :class:`ReplayPlan` decides
when the replay may start (a subscriber, and an arm close to the first command: a replay must
not jump) and which commands are due as time passes. ``lam-ros dataset replay`` and
``replay_node`` both use them; only the publishing is ROS. :func:`load_recording` also
returns the recorded joint states and the episode's scene (what restores it in sim:
``dataset.yaml``'s ``scene`` entry, seed and initial poses), and :func:`tracking_error`
compares the replayed joint states with the recorded ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

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


@dataclass
class Recording:
    """One recorded episode as a replay needs it."""

    times_ns: np.ndarray
    """Command stamps (N,), ns."""
    commands: np.ndarray
    """Commands (N, joints) in the mapping's joint order."""
    mapping: Any
    """The TopicMapping the episode was read with."""
    state_times_ns: np.ndarray
    """Recorded joint-state stamps (M,), ns (empty when the bag has none)."""
    states: np.ndarray
    """Recorded joint positions (M, joints) in the mapping's joint order."""
    scene: Optional[Dict[str, Any]] = None
    """What restores the episode's scene in sim (``seed``, ``object_pose``, ``goal_pose``);
    None when the recording did not store one (plain bags, a real robot)."""
    task: str = ''
    """Task dataset.yaml names ('' when unknown)."""


def load_recording(source: str, episode: str, mapping: Any = None) -> Recording:
    """
    Read episode ``episode`` of ``source``: commands, joint states and scene.

    ``mapping`` is a TopicMapping (None: the dataset's own topics). A missing episode is a
    ValueError naming the closest ones; an unusable one raises bags.reader.EpisodeError.
    """
    from pathlib import Path

    from lam_ros.data.bags.reader import (find_episodes, mapping_for_source, read_dataset_yaml,
                                          read_episode)
    mapping = mapping if mapping is not None else mapping_for_source(source)
    entries = {e.name: e for e in find_episodes(source)}
    if episode not in entries:
        raise ValueError(unknown_episode(episode, sorted(entries), source))
    entry = entries[episode]
    raw = read_episode(entry, mapping, statuses=(entry.status,))
    if 'action' not in raw.streams:
        from lam_ros.data.bags.reader import EpisodeError
        raise EpisodeError(f'no messages on {mapping.command_topic}')
    state = raw.streams.get('joint_pos')
    meta = read_dataset_yaml(source) if Path(source).is_dir() else None
    item = next((e for e in (meta or {}).get('episodes') or []
                 if isinstance(e, dict) and e.get('name') == episode), {})
    scene = item.get('scene') if isinstance(item.get('scene'), dict) else None
    return Recording(raw.streams['action'].times_ns, raw.streams['action'].values, mapping,
                     state.times_ns if state is not None else np.zeros(0, np.int64),
                     state.values if state is not None
                     else np.zeros((0, len(mapping.joint_names))),
                     scene, str((meta or {}).get('task') or ''))


def unknown_episode(name: str, names: List[str], source: str) -> str:
    """Return the message for an episode that is not there, naming the closest ones."""
    import difflib
    digits = ''.join(c for c in name if c.isdigit()).lstrip('0')
    close = [n for n in names if digits and
             ''.join(c for c in n if c.isdigit()).lstrip('0') == digits] or \
        difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    if close:
        return f'no episode {name!r} in {source}; closest: {", ".join(close[:3])} ' \
               f'({len(names)} episodes)'
    shown = ', '.join(names[:3]) + (f' ... {names[-1]}' if len(names) > 3 else '')
    return f'no episode {name!r} in {source}; it has {len(names)}: {shown}'


def tracking_error(recording: Recording, replay_times_s: Sequence[float],
                   replay_states: Sequence[Sequence[float]],
                   speed: float = 1.0) -> Optional[Dict[str, Any]]:
    """
    Compare replayed joint positions with the recorded ones, time-aligned at the first command.

    ``replay_times_s`` count from the replay's first command. Returns ``{'rms', 'max',
    'worst_joint', 'per_joint_max', 'samples'}`` (rad, or m for fingers) over the time both
    cover, or None when either side has fewer than two states there.
    """
    if recording.states.shape[0] < 2 or len(replay_times_s) < 2:
        return None
    rec_t = (recording.state_times_ns - recording.times_ns[0]) * 1e-9
    got_t = np.asarray(replay_times_s, dtype=np.float64) * speed
    got = np.asarray(replay_states, dtype=np.float64)
    end = min(rec_t[-1], got_t[-1], (recording.times_ns[-1] - recording.times_ns[0]) * 1e-9)
    keep = (rec_t >= max(0.0, got_t[0])) & (rec_t <= end)
    if keep.sum() < 2:
        return None
    t = rec_t[keep]
    diff = np.stack([np.interp(t, got_t, got[:, j]) for j in range(got.shape[1])], axis=1) \
        - recording.states[keep]
    per_joint = np.abs(diff).max(axis=0)
    worst = int(np.argmax(per_joint))
    return {'rms': float(np.sqrt(np.mean(diff ** 2))), 'max': float(per_joint[worst]),
            'worst_joint': recording.mapping.joint_names[worst],
            'per_joint_max': [float(v) for v in per_joint], 'samples': int(t.size)}


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
        raise ValueError(unknown_episode(episode, sorted(entries), source))
    times_ns, commands = read_commands(entries[episode], mapping)
    return times_ns, commands, mapping
