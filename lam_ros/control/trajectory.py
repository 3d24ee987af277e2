"""Joint trajectories followed the way a joint_trajectory_controller does: linear in time."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np


class TrajectoryFollower:
    """Linear interpolation of joint targets through timed waypoints."""

    def __init__(self) -> None:
        """Start idle."""
        self._times: Optional[np.ndarray] = None
        self._points: Optional[np.ndarray] = None

    @property
    def active(self) -> bool:
        """Return True while a trajectory is being followed."""
        return self._times is not None

    def start(self, start_s: float, q_now: Sequence[float], times_s: Sequence[float],
              points: np.ndarray) -> None:
        """Follow ``points`` (k, n) reached at ``start_s + times_s``, beginning at ``q_now``."""
        times = np.asarray(times_s, dtype=np.float64)
        if times.size == 0 or np.any(np.diff(times) <= 0) or times[0] < 0:
            raise ValueError('trajectory points need strictly increasing, non-negative '
                             f'time_from_start; got {times.tolist()}')
        self._times = np.r_[0.0, times] + start_s
        self._points = np.vstack([np.asarray(q_now, dtype=np.float64), points])

    def stop(self) -> None:
        """Abandon the current trajectory."""
        self._times = self._points = None

    def sample(self, t_s: float) -> Optional[np.ndarray]:
        """Return the target at ``t_s`` (None when idle); finishing leaves the last point."""
        if self._times is None or self._points is None:
            return None
        if t_s >= self._times[-1]:
            last = self._points[-1].copy()
            self.stop()
            return last
        if t_s <= self._times[0]:
            return self._points[0].copy()
        i = int(np.searchsorted(self._times, t_s, side='right')) - 1
        alpha = (t_s - self._times[i]) / (self._times[i + 1] - self._times[i])
        return (1 - alpha) * self._points[i] + alpha * self._points[i + 1]


def points_by_name(joint_names: Sequence[str], q_now: Sequence[float],
                   msg_joint_names: Sequence[str],
                   positions: Sequence[Sequence[float]]) -> np.ndarray:
    """
    Return full (k, n) waypoints from points that name only some joints.

    Joints a trajectory does not name keep ``q_now``, as with a joint_trajectory_controller.
    Unknown or repeated names, and points of the wrong length, are a ValueError.
    """
    index = {name: i for i, name in enumerate(joint_names)}
    unknown = [n for n in msg_joint_names if n not in index]
    if unknown or len(set(msg_joint_names)) != len(msg_joint_names):
        raise ValueError(f'unknown or repeated joints {unknown or "-"} in '
                         f'{list(msg_joint_names)}; the controller has {list(joint_names)}')
    cols = [index[n] for n in msg_joint_names]
    q_now = np.asarray(q_now, dtype=np.float64)
    points = np.repeat(q_now[None, :], len(positions), axis=0)
    for k, point in enumerate(positions):
        if len(point) != len(cols):
            raise ValueError(f'point {k} has {len(point)} positions for {len(cols)} joints')
        points[k, cols] = point
    return points
