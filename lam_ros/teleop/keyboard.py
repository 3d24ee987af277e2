"""
Keyboard teleop: a key map to twists and gripper commands, and a raw terminal reader.

A terminal only reports key presses (and auto-repeats held keys), never
releases, so a key drives the arm for ``key_hold_s`` after its last repeat.
"""

from __future__ import annotations

from dataclasses import dataclass
import os
import select
import sys
from typing import IO, Optional

import numpy as np

# key -> (index into [vx, vy, vz, wx, wy, wz], sign); base frame, MoveIt Servo style.
MOTION_KEYS: dict[str, tuple[int, float]] = {
    'w': (0, 1.0), 's': (0, -1.0),   # +x forward / -x back
    'a': (1, 1.0), 'd': (1, -1.0),   # +y left / -y right
    'r': (2, 1.0), 'f': (2, -1.0),   # +z up / -z down
    'u': (3, 1.0), 'o': (3, -1.0),   # roll about x
    'i': (4, 1.0), 'k': (4, -1.0),   # pitch about y
    'j': (5, 1.0), 'l': (5, -1.0),   # yaw about z
}
GRIPPER_OPEN_KEY = 'v'
GRIPPER_CLOSE_KEY = 'c'
GRIPPER_TOGGLE_KEY = ' '
FASTER_KEY = '+'
SLOWER_KEY = '-'
STOP_KEY = 'x'
EPISODE_KEYS: dict[str, str] = {'1': 'start', '2': 'stop', '3': 'discard', '0': 'reset'}
"""Keys that call the recorder's / simulator's Trigger services (see teleop_node)."""

HELP_TEXT = """lam_ros keyboard teleop (keys act in the robot base frame)
  w/s  +x/-x    a/d  +y/-y    r/f  +z/-z
  u/o  roll     i/k  pitch    j/l  yaw
  c close gripper   v open gripper   space toggle gripper
  +/- speed up/down   x stop
  1 start recording   2 stop and save   3 discard   0 new scene (sim)"""


@dataclass
class KeyboardConfig:
    """Speeds and timing of keyboard teleop."""

    linear_speed_mps: float = 0.1
    """End-effector speed while a motion key is held (m/s)."""
    angular_speed_radps: float = 0.5
    """End-effector turn rate while a rotation key is held (rad/s)."""
    key_hold_s: float = 0.6
    """How long one key press keeps moving the arm; covers the terminal's auto-repeat delay."""
    speed_step: float = 1.25
    """Factor applied to both speeds by the faster/slower keys."""

    def __post_init__(self) -> None:
        """Reject non-positive speeds and timings."""
        if min(self.linear_speed_mps, self.angular_speed_radps, self.key_hold_s) <= 0:
            raise ValueError('keyboard speeds and key_hold_s must be positive')
        if self.speed_step <= 1.0:
            raise ValueError(f'speed_step must be > 1, got {self.speed_step}')


class KeyboardTeleop:
    """Turn key presses into a twist and a gripper open fraction."""

    def __init__(self, config: KeyboardConfig, gripper_open_fraction: float = 1.0) -> None:
        """Start with no motion and the gripper at ``gripper_open_fraction`` (0..1)."""
        self.config = config
        self.gripper_open_fraction = float(np.clip(gripper_open_fraction, 0.0, 1.0))
        self.speed_scale = 1.0
        self._direction = np.zeros(6)
        self._last_key_s = -np.inf

    def on_key(self, key: str, now_s: float) -> bool:
        """Apply one key press at ``now_s``; return False for keys that mean nothing."""
        key = key.lower() if key not in (FASTER_KEY, SLOWER_KEY) else key
        if key in MOTION_KEYS:
            index, sign = MOTION_KEYS[key]
            self._direction = np.zeros(6)
            self._direction[index] = sign
            self._last_key_s = float(now_s)
        elif key == STOP_KEY:
            self.stop()
        elif key == GRIPPER_OPEN_KEY:
            self.gripper_open_fraction = 1.0
        elif key == GRIPPER_CLOSE_KEY:
            self.gripper_open_fraction = 0.0
        elif key == GRIPPER_TOGGLE_KEY:
            self.gripper_open_fraction = 0.0 if self.gripper_open_fraction > 0.5 else 1.0
        elif key == FASTER_KEY:
            self.speed_scale *= self.config.speed_step
        elif key == SLOWER_KEY:
            self.speed_scale /= self.config.speed_step
        else:
            return False
        return True

    def stop(self) -> None:
        """Forget any held motion key (the gripper keeps its state)."""
        self._direction = np.zeros(6)

    def twist(self, now_s: float) -> tuple[np.ndarray, np.ndarray]:
        """Return (linear m/s, angular rad/s) for ``now_s``: zero once the key is released."""
        if now_s - self._last_key_s > self.config.key_hold_s:
            return np.zeros(3), np.zeros(3)
        lin = self._direction[:3] * self.config.linear_speed_mps * self.speed_scale
        ang = self._direction[3:] * self.config.angular_speed_radps * self.speed_scale
        return lin, ang


class TerminalKeyReader:
    """
    Read single key presses from a terminal without waiting for Enter.

    Use as a context manager: the terminal is put in cbreak mode on entry and
    restored on exit, even after an exception.
    """

    def __init__(self, stream: IO[str] | None = None) -> None:
        """Read from ``stream`` (default: standard input), which must be a terminal."""
        self._stream = stream if stream is not None else sys.stdin
        self._fd = self._stream.fileno()
        if not os.isatty(self._fd):
            raise ValueError(
                'keyboard teleop needs an interactive terminal on stdin; run the teleop node '
                'in its own terminal (ros2 run lam_ros teleop_node --ros-args -p '
                'source:=keyboard) or launch it with prefix:="xterm -e"')
        self._saved = None

    def __enter__(self) -> 'TerminalKeyReader':
        """Switch the terminal to cbreak mode (keys arrive one by one, no echo)."""
        import termios
        import tty
        self._saved = termios.tcgetattr(self._fd)
        tty.setcbreak(self._fd)
        return self

    def __exit__(self, *exc) -> None:
        """Restore the terminal settings."""
        import termios
        if self._saved is not None:
            termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)
            self._saved = None

    def read_keys(self, timeout_s: float = 0.0) -> list[str]:
        """Return the keys pressed since the last call, waiting at most ``timeout_s``."""
        keys = []
        ready, _, _ = select.select([self._fd], [], [], timeout_s)
        while ready:
            data = os.read(self._fd, 64).decode(errors='ignore')
            if not data:
                break
            keys.extend(data)
            ready, _, _ = select.select([self._fd], [], [], 0.0)
        return keys


def open_terminal() -> Optional[TerminalKeyReader]:
    """
    Return a key reader on stdin, else on the controlling terminal; None if there is none.

    Under ``ros2 launch`` stdin is not the terminal, but the controlling terminal
    (``/dev/tty``) still is, so keyboard teleop works from the launching shell.
    """
    try:
        return TerminalKeyReader()
    except ValueError:
        pass
    try:
        return TerminalKeyReader(open('/dev/tty'))
    except (OSError, ValueError):
        return None
