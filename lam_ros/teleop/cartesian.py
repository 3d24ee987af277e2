"""Cartesian teleop: twist + gripper command -> end-effector target -> IK -> joint command.

The kinematics object needs ``fk(q_arm7) -> (pos, quat_wxyz)`` and
``ik(pos, quat_wxyz, q_seed7) -> q_arm7`` (``lam_ros.sim.kinematics.PandaKinematics``).
"""

from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np

from lam_ros.control.limits import JointLimits
from lam_ros.teleop.twist import EndEffectorTarget, pose_error, TwistConfig

FINGER_OPEN_M = 0.04
"""Finger position (per finger, m) of a fully open Panda gripper."""


class Kinematics(Protocol):
    """Forward and inverse kinematics of a 7-joint arm's tool frame."""

    def fk(self, q_arm7: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        """Return tool position (m) and w-first quaternion."""

    def ik(self, pos: Sequence[float], quat_wxyz: Sequence[float],
           q_seed7: Sequence[float] | None = None) -> np.ndarray:
        """Return 7 joint angles (rad) reaching the pose."""


class CartesianTeleop:
    """Integrate twists into a tool target and solve it into 8-joint commands.

    When IK cannot reach the target (joint limits, workspace edge) the target
    is pulled back to the pose actually reached, so the operator never has to
    'unwind' motion that did not happen.
    """

    def __init__(self, kinematics: Kinematics, limits: JointLimits,
                 config: TwistConfig | None = None, finger_open_m: float = FINGER_OPEN_M,
                 max_drift_m: float = 0.01) -> None:
        """Use ``kinematics`` for the arm and ``limits`` (8 commanded joints) for clamping."""
        if limits.size != 8:
            raise ValueError(f'CartesianTeleop commands 8 joints (7 arm + finger); limits '
                             f'cover {limits.size}: {list(limits.joint_names)}')
        self.kinematics = kinematics
        self.limits = limits
        self.config = config or TwistConfig()
        self.finger_open_m = float(finger_open_m)
        self.max_drift_m = float(max_drift_m)
        self._target: EndEffectorTarget | None = None
        self._command: np.ndarray | None = None

    @property
    def ready(self) -> bool:
        """True once synced to a measured joint state."""
        return self._command is not None

    @property
    def command(self) -> np.ndarray:
        """The last joint command, 8 floats."""
        if self._command is None:
            raise ValueError('CartesianTeleop has no command yet; call sync() with the '
                             'measured joint positions first')
        return self._command.copy()

    @property
    def target_pose(self) -> np.ndarray:
        """The current tool target pose (7 floats)."""
        if self._target is None:
            raise ValueError('CartesianTeleop has no target yet; call sync() first')
        return self._target.pose

    def sync(self, q8: Sequence[float]) -> None:
        """Anchor target and command at the measured joint positions (8 floats)."""
        q = self.limits.clamp_position(q8)
        pos, quat = self.kinematics.fk(q[:7])
        self._target = EndEffectorTarget(self.config, np.r_[pos, quat])
        self._command = q

    def step(self, linear_mps: Sequence[float], angular_radps: Sequence[float], dt_s: float,
             gripper_open_fraction: float | None = None, frame: str = 'base') -> np.ndarray:
        """Advance by one twist over ``dt_s`` and return the new clamped 8-joint command."""
        if self._target is None or self._command is None:
            raise ValueError('CartesianTeleop.step() before sync(); wait for a joint state')
        moving = np.any(np.asarray(linear_mps) != 0) or np.any(np.asarray(angular_radps) != 0)
        cmd = self._command.copy()
        if moving:
            pose = self._target.integrate(linear_mps, angular_radps, dt_s, frame)
            q_arm = self.kinematics.ik(pose[:3], pose[3:], cmd[:7])
            cmd[:7] = q_arm
            cmd = self.limits.clamp_position(cmd)
            reached_pos, reached_quat = self.kinematics.fk(cmd[:7])
            reached = np.r_[reached_pos, reached_quat]
            dist_m, _ = pose_error(pose, reached)
            if dist_m > self.max_drift_m:
                self._target.reset(reached)
        if gripper_open_fraction is not None:
            if not np.isfinite(gripper_open_fraction):
                raise ValueError(f'gripper_open_fraction must be finite, got '
                                 f'{gripper_open_fraction}')
            cmd[7] = float(np.clip(gripper_open_fraction, 0.0, 1.0)) * self.finger_open_m
        self._command = self.limits.clamp_position(cmd)
        return self.command
