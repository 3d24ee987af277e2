"""
The command gate: the one place every joint command passes before it reaches an arm.

Teleop, evaluation, RL and the inference node all call the same object once per control
tick::

    gate = CommandGate(limits, control_rate_hz=100.0)
    gate.update_state(now_s, measured_positions)   # on every joint state
    command = gate.step(now_s, target)             # once per tick; None: publish nothing

What the gate guarantees for every command it returns, given the limits it was built with:

- every value is finite and inside [lower, upper] of its joint;
- no joint moves further from the previous returned command than
  ``max_velocity_scale * velocity_limit / control_rate_hz`` (and ``max_step``), so a stream
  published at the control rate never asks for more than the velocity limits;
- with no valid joint state yet it returns None (nothing may be published);
- with a stale joint state (older than ``state_timeout_s``) or a rejected target (NaN/Inf,
  wrong length, None) it holds the previous command;
- the first command after construction or :meth:`resync` is the measured position clamped
  into the limits, so a (re)start never jumps.

It does not know about collisions, torques or the workspace: those belong to the robot's
controller and its safety system.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Optional, Sequence

from lam_ros.control.limits import JointLimits
from lam_ros.control.watchdog import InputWatch
import numpy as np


@dataclass
class GateConfig:
    """How conservative the command gate is (units in names)."""

    max_velocity_scale: float = 1.0
    """Fraction (0..1] of the URDF velocity limits a command stream may move at."""
    max_step: float = math.inf
    """Largest change of any joint between two ticks (rad or m); inf = velocity limits only."""
    state_timeout_s: float = 0.5
    """Joint states older than this (s) are stale: the gate holds the last command."""
    state_tolerance: float = 0.1
    """A measured position further than this outside its limits (rad or m) is malformed."""

    def __post_init__(self) -> None:
        """Validate the settings."""
        if not 0.0 < self.max_velocity_scale <= 1.0:
            raise ValueError(f'max_velocity_scale must be in (0, 1], got '
                             f'{self.max_velocity_scale}')
        if not self.max_step > 0.0:
            raise ValueError(f'max_step must be > 0 (rad or m per tick), got {self.max_step}')
        if not (self.state_timeout_s > 0.0 and math.isfinite(self.state_timeout_s)):
            raise ValueError(f'state_timeout_s must be a positive number of seconds, got '
                             f'{self.state_timeout_s}')
        if not self.state_tolerance >= 0.0:
            raise ValueError(f'state_tolerance must be >= 0, got {self.state_tolerance}')


class CommandGate:
    """Turns untrusted joint targets into commands that respect the robot's limits."""

    def __init__(self, limits: JointLimits, control_rate_hz: float,
                 config: Optional[GateConfig] = None) -> None:
        """Guard commands for the joints of ``limits`` sent at ``control_rate_hz``."""
        if not (control_rate_hz > 0.0 and math.isfinite(control_rate_hz)):
            raise ValueError(f'control_rate_hz must be a positive number, got {control_rate_hz}')
        if not np.all(np.isfinite(limits.velocity)):
            missing = [n for n, v in zip(limits.joint_names, limits.velocity)
                       if not np.isfinite(v)]
            raise ValueError(f'joints {missing} have no velocity limit; the gate needs one per '
                             'joint (add velocity= to their <limit> in the URDF)')
        self.limits = limits
        self.config = config or GateConfig()
        self.control_rate_hz = float(control_rate_hz)
        self.max_step = np.minimum(
            self.config.max_velocity_scale * limits.velocity / self.control_rate_hz,
            self.config.max_step)
        """Largest change per tick of each joint (rad or m)."""
        self._state_watch = InputWatch(self.config.state_timeout_s)
        self._state: Optional[np.ndarray] = None
        self._last: Optional[np.ndarray] = None
        self.reason = 'no joint state yet'
        """Why the last :meth:`step` held or returned None ('' when the target passed)."""

    @property
    def joint_names(self) -> tuple[str, ...]:
        """Return the guarded joints, in command order."""
        return self.limits.joint_names

    @property
    def last_command(self) -> Optional[np.ndarray]:
        """Return a copy of the last command :meth:`step` returned (None before the first)."""
        return None if self._last is None else self._last.copy()

    def state_age_s(self, now_s: float) -> float:
        """Seconds since the last accepted joint state (inf before the first)."""
        return self._state_watch.age_s(now_s)

    def update_state(self, now_s: float, positions: Sequence[float]) -> bool:
        """
        Take a measured joint state (command order); False (and :attr:`reason`) if malformed.

        A malformed state (wrong length, NaN/Inf, far outside the limits) is not taken, so the
        state goes stale and the gate holds.
        """
        q = np.asarray(positions, dtype=np.float64)
        if q.shape != (self.limits.size,):
            self.reason = (f'joint state has {q.size} positions; expected {self.limits.size} '
                           f'for {list(self.joint_names)}')
            return False
        bad = self.limits.position_violations(q, self.config.state_tolerance)
        if bad:
            self.reason = 'joint state rejected: ' + '; '.join(bad)
            return False
        self._state = q
        self._state_watch.touch(now_s)
        return True

    def resync(self) -> None:
        """Re-anchor the next command on the measured state (after a reset or an enable)."""
        self._last = None

    def step(self, now_s: float, target: Optional[Sequence[float]]) -> Optional[np.ndarray]:
        """Return this tick's command for ``target`` (None: nothing may be published yet)."""
        fresh = self._state_watch.fresh(now_s)
        if self._last is None:
            if self._state is None or not fresh:
                self.reason = 'no fresh joint state to start from'
                return None
            self._last = self.limits.clamp_position(self._state)
        reason = self._check(target) if fresh else (
            f'joint state is {self.state_age_s(now_s):.3f} s old '
            f'(> state_timeout_s {self.config.state_timeout_s} s)')
        if reason:
            self.reason = reason
            return self._last.copy()
        q = np.clip(np.asarray(target, dtype=np.float64), self.limits.lower, self.limits.upper)
        q = self._last + np.clip(q - self._last, -self.max_step, self.max_step)
        # The step clip cannot leave the limits (both ends are inside), but rounding can.
        self._last = np.clip(q, self.limits.lower, self.limits.upper)
        self.reason = ''
        return self._last.copy()

    def _check(self, target: Optional[Sequence[float]]) -> str:
        if target is None:
            return 'no target'
        try:
            q = np.asarray(target, dtype=np.float64)
        except (TypeError, ValueError):
            return f'target is not a numeric vector: {type(target).__name__}'
        if q.shape != (self.limits.size,):
            return (f'target has shape {q.shape}; expected ({self.limits.size},) for '
                    f'{list(self.joint_names)}')
        if not np.all(np.isfinite(q)):
            return 'target contains NaN/Inf'
        return ''
