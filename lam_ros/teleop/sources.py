"""
Operator sources: what each teleop device turns into a joint target, tick by tick (no ROS).

Every source answers :meth:`Source.target` once per control tick with a joint target in
command order, or None to hold the arm; :class:`lam_ros.teleop.session.TeleopSession` puts
that target through the command gate. Inputs arrive through the ``on_*`` methods with the
time they were received; bad input raises ValueError with the reason and changes nothing.
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable, Optional, Sequence

from lam_ros.control.watchdog import InputWatch
from lam_ros.teleop.cartesian import CartesianTeleop
from lam_ros.teleop.joy import JoyCommand
from lam_ros.teleop.keyboard import EPISODE_KEYS, KeyboardTeleop
from lam_ros.teleop.leader import LeaderMapping
import numpy as np

_ZERO = np.zeros(3)


class Source:
    """A teleop input that yields joint targets; input older than ``timeout_s`` is stale."""

    def __init__(self, timeout_s: float) -> None:
        """Watch the input with ``timeout_s``."""
        self.input_watch = InputWatch(timeout_s)

    def sync(self, q: np.ndarray) -> None:
        """Re-anchor on the measured joint positions (start, reset)."""

    def stop(self) -> None:
        """Forget pending input (a reset is under way)."""
        self.input_watch.clear()

    def target(self, now_s: float, dt_s: float, q: np.ndarray) -> Optional[np.ndarray]:
        """Return this tick's joint target, or None to hold the arm."""
        raise NotImplementedError


class CartesianSource(Source):
    """MoveIt Servo style twists plus a gripper open fraction, solved by IK (twist, joy)."""

    def __init__(self, cartesian: CartesianTeleop, timeout_s: float, base_frame: str,
                 ee_frame: str) -> None:
        """Integrate twists in ``base_frame`` (or empty) or ``ee_frame`` with ``cartesian``."""
        super().__init__(timeout_s)
        self.cartesian = cartesian
        self.base_frame, self.ee_frame = base_frame, ee_frame
        self._twist: tuple = (_ZERO, _ZERO, 'base')
        self._gripper: Optional[float] = None

    def on_twist(self, now_s: float, frame_id: str, linear: Sequence[float],
                 angular: Sequence[float]) -> None:
        """Take a twist (m/s, rad/s) expressed in ``frame_id``."""
        frame = frame_id.lstrip('/')
        if frame in ('', self.base_frame):
            kind = 'base'
        elif frame == self.ee_frame:
            kind = 'ee'
        else:
            raise ValueError(f'ignoring twist in frame {frame!r}; expected '
                             f'{self.base_frame!r} (or empty) or {self.ee_frame!r}')
        lin, ang = np.asarray(linear, dtype=float), np.asarray(angular, dtype=float)
        if not np.all(np.isfinite(np.r_[lin, ang])):
            raise ValueError('ignoring twist with NaN/Inf')
        self._twist = (lin, ang, kind)
        self.input_watch.touch(now_s)

    def on_gripper(self, open_fraction: float) -> None:
        """Take a gripper command: open fraction, 0 closed .. 1 open (clipped)."""
        if not np.isfinite(open_fraction):
            raise ValueError('ignoring NaN/Inf gripper command; expected an open fraction '
                             '0 (closed) .. 1 (open)')
        self._gripper = float(np.clip(open_fraction, 0.0, 1.0))

    def on_joy(self, now_s: float, cmd: JoyCommand) -> None:
        """Take a joystick command; without the dead-man button the input goes stale."""
        if cmd.gripper_open_fraction is not None:
            self._gripper = cmd.gripper_open_fraction
        self._twist = (cmd.linear_mps, cmd.angular_radps, 'base')
        if cmd.enabled:
            self.input_watch.touch(now_s)
        else:
            self.input_watch.clear()

    def sync(self, q: np.ndarray) -> None:
        """Anchor the tool target at the measured pose; drop old twists and gripper input."""
        self.cartesian.sync(q)
        self._twist = (_ZERO, _ZERO, 'base')
        self._gripper = None

    def target(self, now_s: float, dt_s: float, q: np.ndarray) -> Optional[np.ndarray]:
        """Integrate the twist (zero once stale) over ``dt_s`` and solve for the joints."""
        lin, ang, frame = self._twist
        if not self.input_watch.fresh(now_s):
            lin, ang = _ZERO, _ZERO
        return self.cartesian.step(lin, ang, dt_s, self._gripper, frame)


class KeyboardSource(CartesianSource):
    """Keys from a terminal drive the tool; twist and gripper topics still work alongside."""

    def __init__(self, cartesian: CartesianTeleop, keyboard: KeyboardTeleop, timeout_s: float,
                 base_frame: str, ee_frame: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """Read key timing from ``clock`` (terminal keys come in wall time)."""
        super().__init__(cartesian, timeout_s, base_frame, ee_frame)
        self.keyboard = keyboard
        self.clock = clock

    def on_keys(self, keys: Sequence[str]) -> list[str]:
        """Apply key presses; return the episode actions asked for (start, stop, ...)."""
        actions = []
        for key in keys:
            if key in EPISODE_KEYS:
                actions.append(EPISODE_KEYS[key])
            else:
                self.keyboard.on_key(key, self.clock())
        return actions

    def stop(self) -> None:
        """Forget held keys and pending twists."""
        super().stop()
        self.keyboard.stop()

    def sync(self, q: np.ndarray) -> None:
        """Anchor as a Cartesian source; the gripper keys resume from the measured fingers."""
        super().sync(q)
        self.keyboard.gripper_open_fraction = self.cartesian.gripper_open_fraction(q)

    def target(self, now_s: float, dt_s: float, q: np.ndarray) -> Optional[np.ndarray]:
        """Keys first; a fresh twist topic drives the tool while no motion key is held."""
        lin, ang = self.keyboard.twist(self.clock())
        frame = 'base'
        if not (np.any(lin) or np.any(ang)) and self.input_watch.fresh(now_s):
            lin, ang, frame = self._twist
        if self._gripper is not None:  # a gripper topic message overrides the keys
            self.keyboard.gripper_open_fraction, self._gripper = self._gripper, None
        return self.cartesian.step(lin, ang, dt_s, self.keyboard.gripper_open_fraction, frame)


class LeaderSource(Source):
    """A leader arm's joint state, mapped by name, is the command."""

    def __init__(self, mapping: LeaderMapping, timeout_s: float) -> None:
        """Map leader states with ``mapping``."""
        super().__init__(timeout_s)
        self.mapping = mapping
        self._command: Optional[np.ndarray] = None

    def on_leader(self, now_s: float, names: Sequence[str], positions: Sequence[float]) -> None:
        """Take a leader joint state (names and positions)."""
        self._command = self.mapping.map(names, positions)
        self.input_watch.touch(now_s)

    def sync(self, q: np.ndarray) -> None:
        """Wait for a leader state from after the re-anchoring."""
        self._command = None

    def target(self, now_s: float, dt_s: float, q: np.ndarray) -> Optional[np.ndarray]:
        """Return the mapped leader state while it is fresh."""
        return self._command if self.input_watch.fresh(now_s) else None


class ScriptedSource(Source):
    """The scripted expert plays the operator from the joint state and the task's poses."""

    def __init__(self, expert: Any, pose_keys: Sequence[str], timeout_s: float,
                 reset_jump_m: float, wait_for_recording: bool = False) -> None:
        """
        Act with ``expert`` while every pose of ``pose_keys`` is fresh.

        With ``wait_for_recording`` it also waits for a recorder to report a recording; an
        object jump over ``reset_jump_m`` means a new episode.
        """
        super().__init__(timeout_s)
        self.expert = expert
        self.pose_keys = tuple(pose_keys)
        self.reset_jump_m = float(reset_jump_m)
        self.recording = not wait_for_recording
        self._poses: dict = {}

    def on_pose(self, now_s: float, key: str, pose: np.ndarray) -> bool:
        """Take a pose (object_pose, goal_pose); return True when the object jumped."""
        old = self._poses.get(key)
        self._poses[key] = (np.asarray(pose, dtype=float), now_s)
        return key == 'object_pose' and old is not None and \
            float(np.linalg.norm(pose[:3] - old[0][:3])) > self.reset_jump_m

    def on_recorder_status(self, text: str) -> None:
        """Take a recorder status (JSON): the expert acts only while it records."""
        try:
            self.recording = json.loads(text).get('state') == 'recording'
        except (ValueError, AttributeError) as err:
            raise ValueError(f'not recorder status JSON: {text[:80]!r}') from err

    def sync(self, q: np.ndarray) -> None:
        """Restart the expert's plan."""
        self.expert.reset()

    def stop(self) -> None:
        """Nothing to forget: poses stay until replaced."""

    def target(self, now_s: float, dt_s: float, q: np.ndarray) -> Optional[np.ndarray]:
        """Return the expert's action, or None while not recording or a pose is stale."""
        fresh = all(k in self._poses and now_s - self._poses[k][1] <= self.input_watch.timeout_s
                    for k in self.pose_keys)
        if not (self.recording and fresh):
            return None
        obs = {'joint_pos': q}
        obs.update({k: v[0] for k, v in self._poses.items()})
        return self.expert.act(obs)
