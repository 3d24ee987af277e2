"""
Joystick teleop: map sensor_msgs/Joy axes and buttons to a twist and gripper command.

Defaults fit an Xbox-style pad as reported by the ROS 2 ``joy`` node (SDL2 game
controller layout: A 0, B 1, X 2, Y 3, Back 4, Start 6, LB 9, RB 10; axes: left stick
0/1, right stick 2/3, triggers 4/5, left and up positive). ``joy_linux`` numbers
differently; every index is configuration (config/joy_teleop.yaml).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np


@dataclass
class JoyConfig:
    """Axis and button mapping of a joystick; index -1 means 'not mapped'."""

    deadman_button: int = 9
    """Button that must be held for any motion (dead-man switch); LB on an Xbox pad."""
    linear_axes: list[int] = field(default_factory=lambda: [1, 0, 3])
    """Axis index driving base-frame vx, vy, vz."""
    linear_scale_mps: list[float] = field(default_factory=lambda: [0.15, 0.15, 0.15])
    """Speed at full deflection per linear axis (m/s); a negative value flips it."""
    angular_axes: list[int] = field(default_factory=lambda: [-1, -1, 2])
    """Axis index driving base-frame wx, wy, wz."""
    angular_scale_radps: list[float] = field(default_factory=lambda: [0.8, 0.8, 0.8])
    """Turn rate at full deflection per angular axis (rad/s); a negative value flips it."""
    deadzone: float = 0.1
    """Deflections smaller than this (0..1) count as zero, against stick drift."""
    gripper_close_button: int = 0
    """Button that closes the gripper (A)."""
    gripper_open_button: int = 1
    """Button that opens the gripper (B)."""

    def __post_init__(self) -> None:
        """Check list lengths and the dead zone."""
        for name in ('linear_axes', 'linear_scale_mps', 'angular_axes', 'angular_scale_radps'):
            if len(getattr(self, name)) != 3:
                raise ValueError(f'JoyConfig.{name} needs 3 entries (x, y, z), got '
                                 f'{getattr(self, name)}')
        if not 0.0 <= self.deadzone < 1.0:
            raise ValueError(f'deadzone must be in [0, 1), got {self.deadzone}')
        if self.deadman_button < 0:
            raise ValueError('deadman_button must be a button index: joystick motion always '
                             'needs a dead-man switch')


@dataclass
class JoyCommand:
    """What one Joy message asks for."""

    enabled: bool
    """Dead-man button held; when False the twist is zero."""
    linear_mps: np.ndarray
    """Base-frame linear velocity (m/s)."""
    angular_radps: np.ndarray
    """Base-frame angular velocity (rad/s)."""
    gripper_open_fraction: float | None
    """1 open, 0 closed, None when no gripper button is pressed."""


def _button(buttons: Sequence[int], index: int) -> bool:
    return 0 <= index < len(buttons) and bool(buttons[index])


def _axes(axes: Sequence[float], indices: Sequence[int], scales: Sequence[float],
          deadzone: float) -> np.ndarray:
    out = np.zeros(3)
    for k, (index, scale) in enumerate(zip(indices, scales)):
        if 0 <= index < len(axes):
            value = float(axes[index])
            if np.isfinite(value) and abs(value) >= deadzone:
                out[k] = np.clip(value, -1.0, 1.0) * scale
    return out


def joy_to_command(axes: Sequence[float], buttons: Sequence[int],
                   config: JoyConfig) -> JoyCommand:
    """Map one Joy message to a twist (zero unless the dead-man is held) and gripper command."""
    enabled = _button(buttons, config.deadman_button)
    gripper = None
    if _button(buttons, config.gripper_close_button):
        gripper = 0.0
    elif _button(buttons, config.gripper_open_button):
        gripper = 1.0
    if not enabled:
        return JoyCommand(False, np.zeros(3), np.zeros(3), gripper)
    return JoyCommand(
        True,
        _axes(axes, config.linear_axes, config.linear_scale_mps, config.deadzone),
        _axes(axes, config.angular_axes, config.angular_scale_radps, config.deadzone),
        gripper)
