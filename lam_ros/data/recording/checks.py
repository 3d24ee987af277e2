"""
What makes a recorded episode suspect: required topics that are silent, invalid commands.

:func:`check_topics` validates what a recorder is asked to record. :class:`TopicWatch`
remembers when each topic was last heard, so :class:`RequiredTopics` can refuse to start an
episode before the robot's state arrives (:class:`NotReady`). :func:`command_problem` says what is
wrong with one recorded command (wrong length, NaN/Inf, unknown joints);
:class:`EpisodeChecks` gathers those per episode into notes for ``dataset.yaml``.
"""

from __future__ import annotations

import math
import time
from typing import Any, Dict, List, Optional, Sequence

from lam_ros.data import messages


def short_values(values: Sequence[float], limit: int = 8) -> str:
    """Return ``[v0, v1, ...]`` with 4 significant digits (1e+308, not 309 digits)."""
    values = list(values)
    shown = ', '.join(f'{float(v):.4g}' for v in values[:limit])
    return f'[{shown}{", ..." if len(values) > limit else ""}]'


class TopicWatch:
    """When each topic was last heard, on a monotonic clock."""

    def __init__(self) -> None:
        """Start with no topic heard."""
        self._last_s: Dict[str, float] = {}

    def heard(self, topic: str, now_s: Optional[float] = None) -> None:
        """Note a message on ``topic`` at ``now_s`` (default: now)."""
        self._last_s[topic] = time.monotonic() if now_s is None else float(now_s)

    def silent(self, topics: Sequence[str], max_age_s: float,
               now_s: Optional[float] = None) -> List[str]:
        """Return '<topic> (never heard)' / '<topic> (silent for N s)' for stale ``topics``."""
        now_s = time.monotonic() if now_s is None else float(now_s)
        out = []
        for topic in topics:
            last = self._last_s.get(topic)
            if last is None:
                out.append(f'{topic} (never heard)')
            elif now_s - last > max_age_s:
                out.append(f'{topic} (silent for {now_s - last:.1f} s)')
        return out


class NotReady(RuntimeError):
    """An episode cannot start yet: a required topic is silent."""


def check_topics(topics: Dict[str, str], action_topic: Optional[str],
                 required_topics: Sequence[str]) -> None:
    """Raise ValueError unless topics are absolute, typed, and hold the action and required."""
    if not topics:
        raise ValueError('topics is empty; expected at least one topic -> message type')
    for topic, msgtype in topics.items():
        if not str(topic).startswith('/'):
            raise ValueError(f'topic {topic!r} must be an absolute name starting with "/"')
        if msgtype not in messages.TYPESTORE.types:
            raise ValueError(f'unknown message type {msgtype!r} for {topic}; expected a '
                             'ROS 2 type such as sensor_msgs/msg/JointState')
    if action_topic is not None and action_topic not in topics:
        raise ValueError(f'action_topic {action_topic!r} is not one of the recorded topics '
                         f'{sorted(topics)}')
    missing = [t for t in required_topics if t not in topics]
    if missing:
        raise ValueError(f'required_topics {missing} are not recorded; expected some of '
                         f'{sorted(topics)}')


class RequiredTopics:
    """Topics that must have been heard within ``max_age_s`` for an episode to start."""

    def __init__(self, topics: Sequence[str], max_age_s: float) -> None:
        """Watch ``topics`` (empty: start without checking)."""
        self.topics = list(topics)
        self.max_age_s = float(max_age_s)
        self.watch = TopicWatch()

    def heard(self, topic: str) -> None:
        """Note that ``topic`` delivered a message now."""
        self.watch.heard(topic)

    def silent(self) -> List[str]:
        """Return the required topics not heard recently, each with its age."""
        return self.watch.silent(self.topics, self.max_age_s)

    def check_ready(self) -> None:
        """Raise :class:`NotReady` while a required topic is silent."""
        silent = self.silent()
        if silent:
            raise NotReady(f'not starting: required topics are silent: {", ".join(silent)}; '
                           'start the robot (or sim) that publishes them, or wait and call '
                           'start_episode again')


def command_problem(msg: Any, msgtype: str, joint_names: Sequence[str]) -> Optional[str]:
    """Return what is wrong with one command message (a rosbags message), or None."""
    names = list(joint_names)
    if msgtype == messages.FLOAT64_ARRAY:
        data = [float(v) for v in msg.data]
        if len(data) != len(names):
            return f'{len(data)} values for {len(names)} joints: {short_values(data)}'
        bad = [n for n, v in zip(names, data) if not math.isfinite(v)]
        if bad:
            return f'NaN/Inf for {bad}: {short_values(data)}'
        return None
    if msgtype == messages.JOINT_TRAJECTORY:
        got = list(msg.joint_names)
        unknown = [n for n in got if n not in names]
        if unknown:
            return f'unknown joints {unknown}; expected some of {names}'
        for k, point in enumerate(msg.points):
            positions = [float(v) for v in point.positions]
            if len(positions) != len(got):
                return (f'point {k} has {len(positions)} positions for {len(got)} joints: '
                        f'{short_values(positions)}')
            if not all(math.isfinite(v) for v in positions):
                return f'point {k} has NaN/Inf: {short_values(positions)}'
        return None
    return None


class EpisodeChecks:
    """Invalid commands of one episode, summarised for the operator and ``dataset.yaml``."""

    def __init__(self, command_topic: Optional[str], command_type: Optional[str],
                 joint_names: Sequence[str]) -> None:
        """Check messages on ``command_topic`` (None: no command checks)."""
        self.command_topic = command_topic
        self.command_type = command_type
        self.joint_names = list(joint_names)
        self.invalid = 0
        self.first: Optional[str] = None

    def check(self, topic: str, raw: bytes) -> Optional[str]:
        """Return the problem of a message on the command topic (None when it is fine)."""
        if topic != self.command_topic or self.command_type is None:
            return None
        try:
            msg = messages.deserialize(raw, self.command_type)
        except Exception as exc:  # an undecodable command is an invalid one
            problem = f'undecodable {self.command_type}: {exc}'
        else:
            problem = command_problem(msg, self.command_type, self.joint_names)
        if problem is not None:
            self.invalid += 1
            self.first = self.first or problem
        return problem

    def notes(self, commands: int, counts: Dict[str, int],
              required: Sequence[str]) -> List[str]:
        """Return the warnings of the episode: invalid commands, required topics missing."""
        out = []
        if self.invalid:
            out.append(f'{self.invalid} of {commands} commands on {self.command_topic} are '
                       f'invalid (first: {self.first})')
        for topic in required:
            if not counts.get(topic):
                out.append(f'required topic {topic} has no messages in this episode')
        return out
