"""
Cartesian teleop: twist + gripper command -> end-effector target -> IK -> joint command.

Any arm: the robot description says which entries of the command are arm joints (6 on the
xArm 6, 7 on the Panda) and what the gripper entry means (``GripperSpec.action``). The
kinematics object needs ``fk(q_arm) -> (pos, quat_wxyz)`` and
``ik(pos, quat_wxyz, q_seed) -> q_arm`` (``lam_ros.sim.kinematics.ArmKinematics``).
"""

from __future__ import annotations

from typing import Protocol, Sequence

from lam_ros.control.limits import JointLimits
from lam_ros.description import load_robot, RobotDescription
from lam_ros.teleop.twist import EndEffectorTarget, pose_error, TwistConfig
import numpy as np


class Kinematics(Protocol):
    """Forward and inverse kinematics of an arm's tool frame."""

    def fk(self, q_arm: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        """Return tool position (m) and w-first quaternion."""

    def ik(self, pos: Sequence[float], quat_wxyz: Sequence[float],
           q_seed: Sequence[float] | None = None) -> np.ndarray:
        """Return the arm joint angles (rad) reaching the pose."""


class CartesianTeleop:
    """
    Integrate twists into a tool target and solve it into joint commands.

    When IK cannot reach the target (joint limits, workspace edge) the target
    is pulled back to the pose actually reached, so the operator never has to
    'unwind' motion that did not happen.
    """

    def __init__(self, kinematics: Kinematics, limits: JointLimits,
                 config: TwistConfig | None = None, max_drift_m: float = 0.01,
                 robot: str | RobotDescription | None = None) -> None:
        """
        Use ``kinematics`` for the arm and ``limits`` (the commanded joints) for clamping.

        ``robot`` (default: the kinematics' robot, else the default robot) gives the command
        layout; ``limits`` must name its ``joint_names``, in order.
        """
        self.robot = load_robot(robot if robot is not None
                                else getattr(kinematics, 'robot', None))
        if tuple(limits.joint_names) != self.robot.joint_names:
            raise ValueError(f'CartesianTeleop commands the joints of robot '
                             f'{self.robot.name!r} {list(self.robot.joint_names)}; limits cover '
                             f'{list(limits.joint_names)}')
        names = self.robot.joint_names
        self._arm = np.array([names.index(n) for n in self.robot.arm_joint_names], dtype=int)
        self._grip = self.robot.gripper_index
        self.kinematics = kinematics
        self.limits = limits
        self.config = config or TwistConfig.for_robot(self.robot)
        self.max_drift_m = float(max_drift_m)
        self._target: EndEffectorTarget | None = None
        self._command: np.ndarray | None = None

    @property
    def ready(self) -> bool:
        """Return True once synced to a measured joint state."""
        return self._command is not None

    @property
    def command(self) -> np.ndarray:
        """Return the last joint command, in ``joint_names`` order."""
        if self._command is None:
            raise ValueError('CartesianTeleop has no command yet; call sync() with the '
                             'measured joint positions first')
        return self._command.copy()

    @property
    def target_pose(self) -> np.ndarray:
        """Return the current tool target pose (7 floats)."""
        if self._target is None:
            raise ValueError('CartesianTeleop has no target yet; call sync() first')
        return self._target.pose

    def sync(self, q8: Sequence[float]) -> None:
        """Anchor target and command at the measured joint positions (commanded joints)."""
        q = self.limits.clamp_position(q8)
        pos, quat = self.kinematics.fk(q[self._arm])
        self._target = EndEffectorTarget(self.config, np.r_[pos, quat])
        self._command = q

    def step(self, linear_mps: Sequence[float], angular_radps: Sequence[float], dt_s: float,
             gripper_open_fraction: float | None = None, frame: str = 'base') -> np.ndarray:
        """Advance by one twist over ``dt_s`` and return the new clamped joint command."""
        if self._target is None or self._command is None:
            raise ValueError('CartesianTeleop.step() before sync(); wait for a joint state')
        moving = np.any(np.asarray(linear_mps) != 0) or np.any(np.asarray(angular_radps) != 0)
        cmd = self._command.copy()
        if moving:
            pose = self._target.integrate(linear_mps, angular_radps, dt_s, frame)
            cmd[self._arm] = self.kinematics.ik(pose[:3], pose[3:], cmd[self._arm])
            cmd = self.limits.clamp_position(cmd)
            reached_pos, reached_quat = self.kinematics.fk(cmd[self._arm])
            reached = np.r_[reached_pos, reached_quat]
            dist_m, _ = pose_error(pose, reached)
            if dist_m > self.max_drift_m:
                self._target.reset(reached)
        if gripper_open_fraction is not None:
            if not np.isfinite(gripper_open_fraction):
                raise ValueError(f'gripper_open_fraction must be finite, got '
                                 f'{gripper_open_fraction}')
            if self._grip >= 0:
                cmd[self._grip] = self.robot.gripper.action(gripper_open_fraction)
        self._command = self.limits.clamp_position(cmd)
        return self.command

    def gripper_open_fraction(self, q: Sequence[float]) -> float:
        """Return the open fraction (0 closed .. 1 open) of a command or joint state."""
        if self._grip < 0:
            return 1.0
        return self.robot.gripper.open_fraction(float(q[self._grip]))
