"""Leader-follower teleop: a leader arm's joint state, mapped by name, is the command."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np


@dataclass
class LeaderConfig:
    """How leader joints map onto the follower's commanded joints."""

    follower_joints: list[str]
    """Follower joint names in command order."""
    leader_joints: list[str] = field(default_factory=list)
    """Leader joint name per follower joint; empty means the same names."""
    scale: list[float] = field(default_factory=list)
    """Per-joint factor leader -> follower (e.g. gripper rad -> finger m); empty means 1."""
    offset: list[float] = field(default_factory=list)
    """Per-joint offset added after scaling (rad or m); empty means 0."""

    def __post_init__(self) -> None:
        """Fill defaults and check that every list matches the follower joints."""
        n = len(self.follower_joints)
        if n == 0:
            raise ValueError('LeaderConfig.follower_joints is empty')
        self.leader_joints = list(self.leader_joints) or list(self.follower_joints)
        self.scale = list(self.scale) or [1.0] * n
        self.offset = list(self.offset) or [0.0] * n
        for name in ('leader_joints', 'scale', 'offset'):
            if len(getattr(self, name)) != n:
                raise ValueError(
                    f'LeaderConfig.{name} has {len(getattr(self, name))} entries; expected {n}, '
                    f'one per follower joint {self.follower_joints}')


class LeaderMapping:
    """Map a leader JointState (names, positions) to a follower command vector."""

    def __init__(self, config: LeaderConfig) -> None:
        """Build the mapping from ``config``."""
        self.config = config
        self._scale = np.asarray(config.scale, dtype=np.float64)
        self._offset = np.asarray(config.offset, dtype=np.float64)

    def map(self, names: Sequence[str], positions: Sequence[float]) -> np.ndarray:  # noqa: A003
        """Return the follower command; ValueError when a leader joint is missing or not finite."""
        if len(names) != len(positions):
            raise ValueError(f'leader joint state has {len(names)} names but '
                             f'{len(positions)} positions')
        index = {name: i for i, name in enumerate(names)}
        missing = [n for n in self.config.leader_joints if n not in index]
        if missing:
            raise ValueError(f'leader joint state lacks joints {missing}; it has {list(names)}')
        q = np.array([float(positions[index[n]]) for n in self.config.leader_joints])
        if not np.all(np.isfinite(q)):
            raise ValueError(f'leader joint positions are not finite: {q.tolist()}')
        return q * self._scale + self._offset
