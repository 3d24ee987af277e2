"""
What makes a recorded episode suspect: required topics that are silent, invalid commands.

:class:`TopicWatch` remembers when each topic was last heard, so a recorder can refuse to
start an episode before the robot's state arrives. :func:`command_problem` says what is
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
