"""
Integrate Cartesian velocity commands into an end-effector target pose.

Poses are ``[x, y, z, qw, qx, qy, qz]`` in the robot base frame (metres,
w-first quaternion), as fixed by docs/architecture.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from transforms3d.axangles import axangle2mat
from transforms3d.quaternions import mat2quat, quat2mat

FRAMES = ('base', 'ee')


@dataclass
class TwistConfig:
    """Limits applied while turning twists into an end-effector target."""

    max_linear_speed_mps: float = 0.25
    """Linear speed cap (m/s); faster twists are scaled down, direction kept."""
    max_angular_speed_radps: float = 1.5
    """Angular speed cap (rad/s); faster twists are scaled down, axis kept."""
    workspace_min_m: tuple[float, float, float] = (0.15, -0.6, 0.0)
    """Lower corner of the box the target position stays in (m, base frame)."""
    workspace_max_m: tuple[float, float, float] = (0.85, 0.6, 0.8)
    """Upper corner of the box the target position stays in (m, base frame)."""

    @classmethod
    def for_robot(cls, robot: Any = None, **fields: Any) -> 'TwistConfig':
        """Return the defaults with the workspace box of ``robot``'s description (if any)."""
        from lam_ros.description import load_robot
        box = load_robot(robot).workspace
        if box is not None:
            fields = {'workspace_min_m': box.min_m, 'workspace_max_m': box.max_m, **fields}
        return cls(**fields)

    def __post_init__(self) -> None:
        """Reject speed caps and boxes that cannot work."""
        if self.max_linear_speed_mps <= 0 or self.max_angular_speed_radps <= 0:
            raise ValueError('max_linear_speed_mps and max_angular_speed_radps must be > 0')
        lo, hi = np.asarray(self.workspace_min_m), np.asarray(self.workspace_max_m)
        if lo.shape != (3,) or hi.shape != (3,) or np.any(lo >= hi):
            raise ValueError(
                f'workspace_min_m {self.workspace_min_m} must be 3 values each below '
                f'workspace_max_m {self.workspace_max_m}')


def _cap(vec: np.ndarray, max_norm: float) -> np.ndarray:
    norm = float(np.linalg.norm(vec))
    return vec * (max_norm / norm) if norm > max_norm else vec


def as_pose(pose: Sequence[float]) -> np.ndarray:
    """Validate a 7-float pose and return it with a unit, w-positive quaternion."""
    p = np.asarray(pose, dtype=np.float64)
    if p.shape != (7,) or not np.all(np.isfinite(p)):
        raise ValueError(f'a pose is 7 finite floats [x, y, z, qw, qx, qy, qz]; got {p}')
    norm = np.linalg.norm(p[3:])
    if norm < 1e-6:
        raise ValueError(f'pose quaternion {p[3:]} has zero norm')
    q = p[3:] / norm
    p[3:] = -q if q[0] < 0 else q
    return p


class EndEffectorTarget:
    """An end-effector target pose moved by linear and angular velocities."""

    def __init__(self, config: TwistConfig, pose: Sequence[float]) -> None:
        """Start at ``pose`` (7 floats, base frame)."""
        self.config = config
        self._lo = np.asarray(config.workspace_min_m, dtype=np.float64)
        self._hi = np.asarray(config.workspace_max_m, dtype=np.float64)
        self.reset(pose)

    @property
    def pose(self) -> np.ndarray:
        """Return the current target pose, 7 floats."""
        return self._pose.copy()

    def reset(self, pose: Sequence[float]) -> None:
        """Move the target to ``pose`` (clamped into the workspace box)."""
        p = as_pose(pose)
        p[:3] = np.clip(p[:3], self._lo, self._hi)
        self._pose = p

    def integrate(self, linear_mps: Sequence[float], angular_radps: Sequence[float],
                  dt_s: float, frame: str = 'base') -> np.ndarray:
        """
        Advance the target by a twist held for ``dt_s`` seconds and return the new pose.

        ``frame`` is the frame the twist is expressed in: ``'base'`` (robot base,
        MoveIt Servo's planning frame) or ``'ee'`` (the end effector itself).
        """
        if frame not in FRAMES:
            raise ValueError(f'twist frame {frame!r} unknown; expected one of {FRAMES}')
        if not dt_s >= 0.0:
            raise ValueError(f'dt_s must be >= 0 seconds, got {dt_s}')
        v = np.asarray(linear_mps, dtype=np.float64)
        w = np.asarray(angular_radps, dtype=np.float64)
        if v.shape != (3,) or w.shape != (3,) or not np.all(np.isfinite(np.r_[v, w])):
            raise ValueError(f'twist must be two finite 3-vectors; got linear {v}, angular {w}')
        v = _cap(v, self.config.max_linear_speed_mps)
        w = _cap(w, self.config.max_angular_speed_radps)
        rot = quat2mat(self._pose[3:])
        if frame == 'ee':
            v, w = rot @ v, rot @ w
        pos = np.clip(self._pose[:3] + v * dt_s, self._lo, self._hi)
        angle = float(np.linalg.norm(w)) * dt_s
        if angle > 0.0:
            rot = axangle2mat(w / np.linalg.norm(w), angle) @ rot
        self._pose = as_pose(np.r_[pos, mat2quat(rot)])
        return self.pose


def pose_error(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Return the position distance (m) and rotation angle (rad) between two poses."""
    pa, pb = as_pose(a), as_pose(b)
    dot = abs(float(np.dot(pa[3:], pb[3:])))
    return float(np.linalg.norm(pa[:3] - pb[:3])), 2.0 * float(np.arccos(min(1.0, dot)))
