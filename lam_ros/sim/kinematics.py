"""
Forward and inverse kinematics of the Panda grasp frame, independent of any environment.

``PandaKinematics`` owns a private ``pybullet.DIRECT`` client holding only the Panda, so the
teleop node and the scripted expert can use it with nothing but joint states from ROS.
"""

from typing import Optional, Sequence, Tuple

from lam_ros.sim.robot import (ALL_JOINT_NAMES, ARM_JOINT_NAMES, GRASP_LINK_NAME, HOME_JOINT_POS,
                               joint_indices, joint_limits, link_index, panda_urdf_path)
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


class PandaKinematics:
    """Grasp-frame (``panda_grasptarget``) kinematics on a private PyBullet client."""

    def __init__(self, urdf_path: Optional[str] = None, ik_iterations: int = 4,
                 ik_tolerance_m: float = 1e-4) -> None:
        """
        Load the Panda into a new DIRECT client.

        Up to ``ik_iterations`` refinement passes of PyBullet's IK run until the position
        error is below ``ik_tolerance_m``.
        """
        import pybullet as p
        self._p = p
        self._client = p.connect(p.DIRECT)
        self._body = p.loadURDF(urdf_path or panda_urdf_path(), useFixedBase=True,
                                physicsClientId=self._client)
        self._arm = joint_indices(self._client, self._body, ARM_JOINT_NAMES)
        self._fingers = joint_indices(self._client, self._body, ALL_JOINT_NAMES[7:])
        self._link = link_index(self._client, self._body, GRASP_LINK_NAME)
        limits = joint_limits(ALL_JOINT_NAMES, urdf_path or '')
        # PyBullet's null-space IK takes one entry per movable joint (9 on the Panda).
        self._lower = limits.lower.tolist()
        self._upper = limits.upper.tolist()
        self._ranges = (limits.upper - limits.lower).tolist()
        self.arm_lower = limits.lower[:7].copy()
        self.arm_upper = limits.upper[:7].copy()
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

    def _check_q(self, q_arm7: Sequence[float], what: str) -> np.ndarray:
        q = np.asarray(q_arm7, dtype=np.float64).reshape(-1)
        if q.shape != (7,) or not np.all(np.isfinite(q)):
            raise ValueError(f'{what} must be 7 finite arm joint angles (rad), got {q_arm7!r}')
        return q

    def _set_arm(self, q: np.ndarray) -> None:
        for idx, value in zip(self._arm, q):
            self._p.resetJointState(self._body, idx, float(value), physicsClientId=self._client)

    def fk(self, q_arm7: Sequence[float]) -> Tuple[np.ndarray, np.ndarray]:
        """Return the grasp-frame position (m) and w-first quaternion for arm angles (rad)."""
        self._set_arm(self._check_q(q_arm7, 'q_arm7'))
        state = self._p.getLinkState(self._body, self._link, computeForwardKinematics=True,
                                     physicsClientId=self._client)
        return np.array(state[4], dtype=np.float64), quat_xyzw_to_wxyz(state[5])

    def ik(self, pos: Sequence[float], quat_wxyz: Sequence[float],
           q_seed7: Optional[Sequence[float]] = None) -> np.ndarray:
        """
        Return 7 arm angles (rad, within limits) placing the grasp frame at the pose.

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
        seed = (HOME_JOINT_POS[:7] if q_seed7 is None
                else self._check_q(q_seed7, 'q_seed7'))
        seed = np.clip(seed, self.arm_lower, self.arm_upper)
        rest = seed.tolist() + [0.04, 0.04]
        self._set_arm(seed)
        # One null-space pass keeps the answer near the seed and inside the limits; plain
        # passes from there converge the pose (null-space IK alone stalls at millimetres).
        sol = self._p.calculateInverseKinematics(
            self._body, self._link, target.tolist(), quat_wxyz_to_xyzw(quat).tolist(),
            lowerLimits=self._lower, upperLimits=self._upper, jointRanges=self._ranges,
            restPoses=rest, maxNumIterations=50, residualThreshold=1e-5,
            physicsClientId=self._client)
        q = np.clip(np.array(sol[:7], dtype=np.float64), self.arm_lower, self.arm_upper)
        for _ in range(max(0, self.ik_iterations)):
            reached, _ = self.fk(q)
            if np.linalg.norm(reached - target) < self.ik_tolerance_m:
                break
            sol = self._p.calculateInverseKinematics(
                self._body, self._link, target.tolist(), quat_wxyz_to_xyzw(quat).tolist(),
                maxNumIterations=50, residualThreshold=1e-6, physicsClientId=self._client)
            q = np.clip(np.array(sol[:7], dtype=np.float64), self.arm_lower, self.arm_upper)
        return q
