"""
Forward and inverse kinematics of an arm's tool frame, independent of any environment.

``ArmKinematics`` owns a private ``pybullet.DIRECT`` client holding only the arm of a robot
description (any number of arm joints, the tool link and its offset from the description), so
the teleop node and the scripted expert can use it with nothing but joint states from ROS.
"""

from typing import Optional, Sequence, Tuple, Union

from lam_ros.description import load_robot, RobotDescription
from lam_ros.sim.robot import joint_indices, link_index
import numpy as np
import transforms3d


def quat_xyzw_to_wxyz(q: Sequence[float]) -> np.ndarray:
    """Reorder a PyBullet (x, y, z, w) quaternion to transforms3d (w, x, y, z)."""
    return np.array([q[3], q[0], q[1], q[2]], dtype=np.float64)


def quat_wxyz_to_xyzw(q: Sequence[float]) -> np.ndarray:
    """Reorder a transforms3d (w, x, y, z) quaternion to PyBullet (x, y, z, w)."""
    return np.array([q[1], q[2], q[3], q[0]], dtype=np.float64)


def orientation_error_rad(q_a_wxyz: Sequence[float], q_b_wxyz: Sequence[float]) -> float:
    """Return the angle (rad) of the rotation between two w-first quaternions."""
    a = np.asarray(q_a_wxyz, dtype=np.float64)
    b = np.asarray(q_b_wxyz, dtype=np.float64)
    dot = abs(float(np.dot(a / np.linalg.norm(a), b / np.linalg.norm(b))))
    return 2.0 * float(np.arccos(min(1.0, dot)))


def top_down_quat(yaw_rad: float) -> np.ndarray:
    """Return the w-first grasp-frame orientation pointing down (z to -z world), turned by yaw."""
    rot = transforms3d.euler.euler2mat(np.pi, 0.0, yaw_rad, axes='sxyz')
    return transforms3d.quaternions.mat2quat(rot)


def yaw_of(q_wxyz: Sequence[float]) -> float:
    """Return the yaw (rad, about world z) of the grasp-frame x axis."""
    rot = transforms3d.quaternions.quat2mat(np.asarray(q_wxyz, dtype=np.float64))
    return float(np.arctan2(rot[1, 0], rot[0, 0]))


class ArmKinematics:
    """Tool-frame kinematics of one robot description on a private PyBullet client."""

    def __init__(self, urdf_path: Optional[str] = None, ik_iterations: int = 4,
                 ik_tolerance_m: float = 1e-4,
                 robot: Union[None, str, RobotDescription] = None) -> None:
        """
        Load the arm of ``robot`` (default: the default robot) into a new DIRECT client.

        ``urdf_path`` replaces the description's URDF. Up to ``ik_iterations`` refinement
        passes of PyBullet's IK run until the position error is below ``ik_tolerance_m``.
        """
        import pybullet as p
        self.robot = load_robot(robot)
        self._p = p
        self._client = p.connect(p.DIRECT)
        path = urdf_path or self.robot.urdf_path()
        self._body = p.loadURDF(path, useFixedBase=True, physicsClientId=self._client)
        self.dof = self.robot.arm_dof
        self._arm = joint_indices(self._client, self._body, self.robot.arm_joint_names)
        self._link = link_index(self._client, self._body, self.robot.frames.tool)
        self._offset = np.asarray(self.robot.frames.tool_offset, dtype=np.float64)
        # PyBullet's null-space IK takes one entry per movable joint, in index order.
        movable = [i for i in range(p.getNumJoints(self._body, physicsClientId=self._client))
                   if p.getJointInfo(self._body, i, physicsClientId=self._client)[2]
                   != p.JOINT_FIXED]
        self._movable_arm = [movable.index(i) for i in self._arm]
        names = [p.getJointInfo(self._body, i, physicsClientId=self._client)[1].decode()
                 for i in movable]
        from lam_ros.description.robot import urdf_joint_limits
        limits = urdf_joint_limits(path, names)
        self._lower = np.maximum(limits.lower, -2 * np.pi).tolist()
        self._upper = np.minimum(limits.upper, 2 * np.pi).tolist()
        self._ranges = (np.array(self._upper) - np.array(self._lower)).tolist()
        self._rest = ((np.array(self._lower) + np.array(self._upper)) / 2).tolist()
        arm = urdf_joint_limits(path, self.robot.arm_joint_names)
        self.arm_lower = arm.lower.copy()
        self.arm_upper = arm.upper.copy()
        home = np.asarray(self.robot.home_pose)
        self.home_arm = np.array([home[self.robot.joint_names.index(n)]
                                  for n in self.robot.arm_joint_names])
        self.ik_iterations = int(ik_iterations)
        self.ik_tolerance_m = float(ik_tolerance_m)

    def close(self) -> None:
        """Disconnect the private client."""
        if self._client is not None and self._p.isConnected(self._client):
            self._p.disconnect(self._client)
        self._client = None

    def __del__(self) -> None:
        """Release the PyBullet client."""
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown may have unloaded pybullet
            pass

    def _check_q(self, q_arm: Sequence[float], what: str) -> np.ndarray:
        q = np.asarray(q_arm, dtype=np.float64).reshape(-1)
        if q.shape != (self.dof,) or not np.all(np.isfinite(q)):
            raise ValueError(f'{what} must be {self.dof} finite arm joint angles (rad) of '
                             f'{list(self.robot.arm_joint_names)}, got {q_arm!r}')
        return q

    def _set_arm(self, q: np.ndarray) -> None:
        for idx, value in zip(self._arm, q):
            self._p.resetJointState(self._body, idx, float(value), physicsClientId=self._client)

    def fk(self, q_arm: Sequence[float]) -> Tuple[np.ndarray, np.ndarray]:
        """Return the tool position (m) and w-first quaternion for arm angles (rad)."""
        self._set_arm(self._check_q(q_arm, 'q_arm'))
        state = self._p.getLinkState(self._body, self._link, computeForwardKinematics=True,
                                     physicsClientId=self._client)
        quat = quat_xyzw_to_wxyz(state[5])
        pos = np.array(state[4], dtype=np.float64)
        if self._offset.any():
            pos = pos + transforms3d.quaternions.quat2mat(quat) @ self._offset
        return pos, quat

    def _link_target(self, pos: np.ndarray, quat: np.ndarray) -> np.ndarray:
        if not self._offset.any():
            return pos
        return pos - transforms3d.quaternions.quat2mat(quat) @ self._offset

    def ik(self, pos: Sequence[float], quat_wxyz: Sequence[float],
           q_seed: Optional[Sequence[float]] = None) -> np.ndarray:
        """
        Return the arm angles (rad, within limits) placing the tool frame at the pose.

        The seed is both the starting point and the rest pose of the null space, so
        consecutive calls with the previous answer as seed give a smooth joint path.
        """
        target = np.asarray(pos, dtype=np.float64).reshape(-1)
        quat = np.asarray(quat_wxyz, dtype=np.float64).reshape(-1)
        if target.shape != (3,) or not np.all(np.isfinite(target)):
            raise ValueError(f'pos must be 3 finite coordinates (m), got {pos!r}')
        if quat.shape != (4,) or not np.all(np.isfinite(quat)) or np.linalg.norm(quat) < 1e-9:
            raise ValueError(f'quat_wxyz must be a non-zero w-first quaternion, got {quat_wxyz!r}')
        quat = quat / np.linalg.norm(quat)
        seed = self.home_arm if q_seed is None else self._check_q(q_seed, 'q_seed')
        seed = np.clip(seed, self.arm_lower, self.arm_upper)
        rest = list(self._rest)
        for k, value in zip(self._movable_arm, seed):
            rest[k] = float(value)
        link_target = self._link_target(target, quat)
        self._set_arm(seed)
        # One null-space pass keeps the answer near the seed and inside the limits; plain
        # passes from there converge the pose (null-space IK alone stalls at millimetres).
        sol = self._p.calculateInverseKinematics(
            self._body, self._link, link_target.tolist(), quat_wxyz_to_xyzw(quat).tolist(),
            lowerLimits=self._lower, upperLimits=self._upper, jointRanges=self._ranges,
            restPoses=rest, maxNumIterations=50, residualThreshold=1e-5,
            physicsClientId=self._client)
        q = self._arm_of(sol)
        for _ in range(max(0, self.ik_iterations)):
            reached, _ = self.fk(q)
            if np.linalg.norm(reached - target) < self.ik_tolerance_m:
                break
            sol = self._p.calculateInverseKinematics(
                self._body, self._link, link_target.tolist(), quat_wxyz_to_xyzw(quat).tolist(),
                maxNumIterations=50, residualThreshold=1e-6, physicsClientId=self._client)
            q = self._arm_of(sol)
        return q

    def _arm_of(self, solution: Sequence[float]) -> np.ndarray:
        q = np.array([solution[k] for k in self._movable_arm], dtype=np.float64)
        return np.clip(q, self.arm_lower, self.arm_upper)


PandaKinematics = ArmKinematics
"""The former name of :class:`ArmKinematics` (the default robot is the Panda)."""
