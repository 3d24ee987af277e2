"""
Joint position and velocity limits read from a URDF, with clamp and check helpers.

Only ``xml.etree`` and numpy: the same limits guard teleop, inference and the
simulator, on machines with or without ROS.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union
import xml.etree.ElementTree as ET

import numpy as np

_MOVABLE_TYPES = ('revolute', 'continuous', 'prismatic')


@dataclass(frozen=True)
class JointLimits:
    """Per-joint limits in a fixed joint order (rad, rad/s; m, m/s for prismatic joints)."""

    joint_names: tuple[str, ...]
    """Joint names, in the order of every array below."""
    lower: np.ndarray
    """Lower position limit per joint (rad or m); -inf for continuous joints."""
    upper: np.ndarray
    """Upper position limit per joint (rad or m); +inf for continuous joints."""
    velocity: np.ndarray
    """Maximum speed per joint (rad/s or m/s); +inf where the URDF gives none."""
    effort: Optional[np.ndarray] = None
    """Maximum effort per joint (N m or N); +inf where the URDF gives none (None: all +inf)."""

    def __post_init__(self) -> None:
        """Validate shapes and ordering of the limits."""
        n = len(self.joint_names)
        if self.effort is None:
            object.__setattr__(self, 'effort', np.full(n, np.inf))
        for field in ('lower', 'upper', 'velocity', 'effort'):
            arr = np.asarray(getattr(self, field), dtype=np.float64)
            if arr.shape != (n,):
                raise ValueError(
                    f'JointLimits.{field} has shape {arr.shape}; expected ({n},), one value per '
                    f'joint in {list(self.joint_names)}')
            object.__setattr__(self, field, arr)
        bad = [name for name, lo, hi in zip(self.joint_names, self.lower, self.upper) if lo > hi]
        if bad:
            raise ValueError(f'lower limit above upper limit for joints {bad}')
        if np.any(self.velocity <= 0.0):
            raise ValueError('velocity limits must be positive (rad/s or m/s)')

    @property
    def size(self) -> int:
        """Return the number of joints."""
        return len(self.joint_names)

    def select(self, joint_names: Sequence[str]) -> 'JointLimits':
        """Return the limits of ``joint_names`` in that order."""
        index = {name: i for i, name in enumerate(self.joint_names)}
        missing = [name for name in joint_names if name not in index]
        if missing:
            raise ValueError(
                f'joints {missing} have no limits; the URDF defines {list(self.joint_names)}')
        idx = [index[name] for name in joint_names]
        return JointLimits(tuple(joint_names), self.lower[idx], self.upper[idx],
                           self.velocity[idx], self.effort[idx])

    def _as_vector(self, positions: Sequence[float], what: str) -> np.ndarray:
        q = np.asarray(positions, dtype=np.float64)
        if q.shape != (self.size,):
            raise ValueError(
                f'{what} has shape {q.shape}; expected ({self.size},) for joints '
                f'{list(self.joint_names)}')
        return q

    def clamp_position(self, positions: Sequence[float]) -> np.ndarray:
        """Clamp joint positions into [lower, upper]; NaN/Inf raise ValueError."""
        q = self._as_vector(positions, 'positions')
        if not np.all(np.isfinite(q)):
            raise ValueError(f'positions contain NaN/Inf: {q.tolist()}')
        return np.clip(q, self.lower, self.upper)

    def clamp_velocity(self, target: Sequence[float], previous: Sequence[float],
                       dt_s: float, scale: float = 1.0) -> np.ndarray:
        """Limit the step from ``previous`` to ``target`` to ``scale * velocity * dt_s``."""
        if not dt_s > 0.0:
            raise ValueError(f'dt_s must be positive seconds, got {dt_s}')
        if not 0.0 < scale <= 1.0:
            raise ValueError(f'scale must be in (0, 1], got {scale}')
        q = self._as_vector(target, 'target')
        q0 = self._as_vector(previous, 'previous')
        max_step = scale * self.velocity * dt_s
        return q0 + np.clip(q - q0, -max_step, max_step)

    def within_position(self, positions: Sequence[float], tolerance: float = 0.0) -> bool:
        """Return True when every joint lies within its limits (plus ``tolerance``)."""
        q = self._as_vector(positions, 'positions')
        return bool(np.all(np.isfinite(q)) and np.all(q >= self.lower - tolerance)
                    and np.all(q <= self.upper + tolerance))

    def position_violations(self, positions: Sequence[float],
                            tolerance: float = 0.0) -> list[str]:
        """Describe every joint outside its limits (empty when all are inside)."""
        q = self._as_vector(positions, 'positions')
        out = []
        for name, value, lo, hi in zip(self.joint_names, q, self.lower, self.upper):
            if not np.isfinite(value):
                out.append(f'{name}={value} is not finite')
            elif value < lo - tolerance or value > hi + tolerance:
                out.append(f'{name}={value:.4f} outside [{lo:.4f}, {hi:.4f}]')
        return out

    def velocity_violations(self, target: Sequence[float], previous: Sequence[float],
                            dt_s: float, tolerance: float = 1e-9) -> list[str]:
        """Describe every joint whose step over ``dt_s`` exceeds its velocity limit."""
        if not dt_s > 0.0:
            raise ValueError(f'dt_s must be positive seconds, got {dt_s}')
        speed = np.abs(self._as_vector(target, 'target')
                       - self._as_vector(previous, 'previous')) / dt_s
        return [f'{name} moves at {v:.3f} > {vmax:.3f} per s'
                for name, v, vmax in zip(self.joint_names, speed, self.velocity)
                if v > vmax + tolerance]


def parse_urdf_limits(urdf_xml: str) -> JointLimits:
    """
    Parse the limits of every movable joint of a URDF given as XML text.

    Mimic joints are included (they have their own limits); fixed and floating
    joints are not.
    """
    try:
        root = ET.fromstring(urdf_xml)
    except ET.ParseError as exc:
        raise ValueError(f'URDF is not valid XML: {exc}') from exc
    if root.tag != 'robot':
        raise ValueError(f'URDF root element is <{root.tag}>; expected <robot>')
    names, lower, upper, velocity, effort = [], [], [], [], []
    for joint in root.iter('joint'):
        kind = joint.get('type')
        if kind not in _MOVABLE_TYPES:
            continue
        name = joint.get('name')
        if not name:
            raise ValueError('URDF has a movable <joint> without a name attribute')
        limit = joint.find('limit')
        if kind == 'continuous':
            lo, hi = -np.inf, np.inf
        else:
            if limit is None or limit.get('lower') is None or limit.get('upper') is None:
                raise ValueError(
                    f'{kind} joint {name!r} has no <limit lower=... upper=...>; '
                    'the URDF must bound every revolute and prismatic joint')
            lo, hi = float(limit.get('lower')), float(limit.get('upper'))
        vel = limit.get('velocity') if limit is not None else None
        names.append(name)
        lower.append(lo)
        upper.append(hi)
        # A velocity of 0 in a URDF conventionally means 'not given'.
        velocity.append(float(vel) if vel is not None and float(vel) > 0.0 else np.inf)
        eff = limit.get('effort') if limit is not None else None
        effort.append(float(eff) if eff is not None and float(eff) > 0.0 else np.inf)
    if not names:
        raise ValueError('URDF defines no revolute, continuous or prismatic joints')
    return JointLimits(tuple(names), np.array(lower), np.array(upper), np.array(velocity),
                       np.array(effort))


def load_urdf_limits(urdf_path: Union[str, Path],
                     joint_names: Sequence[str] | None = None) -> JointLimits:
    """Read joint limits from a URDF file, optionally selecting ``joint_names`` in order."""
    path = Path(urdf_path)
    if not path.is_file():
        raise ValueError(f'URDF file {str(path)!r} does not exist; pass the robot URDF path')
    limits = parse_urdf_limits(path.read_text())
    return limits.select(joint_names) if joint_names is not None else limits
