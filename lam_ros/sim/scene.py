"""
The PyBullet workcell: Panda on a table, a cube and a target zone, at physics rate.

``PandaScene`` knows bodies, joints, motors, contacts and cameras, and nothing about
tasks or rewards; ``GraspEnv`` builds the tasks on top of it.
"""

import os
from typing import Optional, Sequence, Tuple

from lam_ros.description.files import urdf_path
from lam_ros.sim.config import CameraConfig
from lam_ros.sim.kinematics import quat_wxyz_to_xyzw, quat_xyzw_to_wxyz
from lam_ros.sim.robot import (ALL_JOINT_NAMES, GRASP_LINK_NAME, joint_indices, joint_limits,
                               link_index, panda_light_visuals_urdf_path, panda_urdf_path)
import numpy as np

FINGER_FRICTION = 1.0
"""Lateral friction of the finger pads; PyBullet's default slips on a 100 g cube."""


def has_display() -> bool:
    """Return True when a GUI window can be opened (X11 or Wayland)."""
    return bool(os.environ.get('DISPLAY') or os.environ.get('WAYLAND_DISPLAY'))


class PandaScene:
    """One PyBullet client holding the Panda, the table, a cube and an optional target zone."""

    def __init__(self, physics_rate_hz: float, with_zone: bool, gui: bool = False,
                 light_visuals: bool = False) -> None:
        """
        Connect (DIRECT, or GUI when ``gui``) and load every body once.

        ``light_visuals`` draws the robot with its collision meshes (fast camera images).
        """
        import pybullet as p
        self.p = p
        if gui and not has_display():
            raise RuntimeError(
                "render_mode='human' needs a display (DISPLAY or WAYLAND_DISPLAY is unset); "
                "use render_mode='rgb_array' on a headless machine.")
        self.client = p.connect(p.GUI if gui else p.DIRECT)
        if self.client < 0:
            raise RuntimeError('could not connect to PyBullet (only one GUI client per process)')
        cid = self.client
        self.dt_s = 1.0 / float(physics_rate_hz)
        p.setGravity(0.0, 0.0, -9.81, physicsClientId=cid)
        p.setPhysicsEngineParameter(fixedTimeStep=self.dt_s, deterministicOverlappingPairs=1,
                                    physicsClientId=cid)
        self.table = p.loadURDF(urdf_path('table.urdf'), useFixedBase=True, physicsClientId=cid)
        robot_urdf = panda_light_visuals_urdf_path() if light_visuals else panda_urdf_path()
        self.robot = p.loadURDF(robot_urdf, useFixedBase=True,
                                flags=p.URDF_USE_SELF_COLLISION_EXCLUDE_PARENT,
                                physicsClientId=cid)
        self.cube = self._load_cube()
        self.zone = (p.loadURDF(urdf_path('target_zone.urdf'), [0.5, 0.3, 0.0],
                                useFixedBase=True, physicsClientId=cid) if with_zone else None)
        self.joints = joint_indices(cid, self.robot, ALL_JOINT_NAMES)
        self.fingers = self.joints[7:]
        self.grasp_link = link_index(cid, self.robot, GRASP_LINK_NAME)
        limits = joint_limits(ALL_JOINT_NAMES)
        self.effort = limits.effort.tolist()
        for finger in self.fingers:
            p.changeDynamics(self.robot, finger, lateralFriction=FINGER_FRICTION,
                             spinningFriction=0.001, physicsClientId=cid)
        self._initial_state = p.saveState(physicsClientId=cid)

    def _load_cube(self) -> int:
        return self.p.loadURDF(urdf_path('cube.urdf'), [0.5, 0.0, 0.025],
                               physicsClientId=self.client)

    def close(self) -> None:
        """Disconnect the client."""
        if self.client is not None and self.p.isConnected(self.client):
            self.p.disconnect(self.client)
        self.client = None

    def restore_initial(self) -> None:
        """
        Restore the state saved right after loading, and a fresh cube.

        Contact manifolds of the cube survive restoreState and carry the previous episode into
        the next one (1e-7 m drifts); a newly loaded cube makes seeded episodes bit-identical.
        """
        self.p.restoreState(self._initial_state, physicsClientId=self.client)
        self.p.removeBody(self.cube, physicsClientId=self.client)
        self.cube = self._load_cube()

    def reset_joints(self, q8: Sequence[float]) -> None:
        """Teleport the robot to ``q8`` (7 arm rad + finger m) at rest and hold it there."""
        q9 = np.concatenate([np.asarray(q8, dtype=np.float64), [q8[7]]])
        for idx, value in zip(self.joints, q9):
            self.p.resetJointState(self.robot, idx, float(value), 0.0,
                                   physicsClientId=self.client)
        self.set_joint_targets(q8)

    def set_joint_targets(self, q8: Sequence[float]) -> None:
        """Command position targets for the 8 joints; the second finger mirrors the first."""
        q9 = [float(v) for v in q8] + [float(q8[7])]
        self.p.setJointMotorControlArray(
            self.robot, self.joints, self.p.POSITION_CONTROL, targetPositions=q9,
            forces=self.effort, physicsClientId=self.client)

    def step(self, n: int) -> None:
        """Advance the physics by ``n`` time steps."""
        for _ in range(int(n)):
            self.p.stepSimulation(physicsClientId=self.client)

    def joint_states(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return position, velocity and applied effort of all 9 joints."""
        states = self.p.getJointStates(self.robot, self.joints, physicsClientId=self.client)
        pos, vel, _, eff = zip(*states)
        return np.array(pos), np.array(vel), np.array(eff)

    def grasp_pose(self) -> np.ndarray:
        """Return the grasp-frame pose [x, y, z, qw, qx, qy, qz]."""
        state = self.p.getLinkState(self.robot, self.grasp_link, computeForwardKinematics=True,
                                    physicsClientId=self.client)
        return np.concatenate([state[4], quat_xyzw_to_wxyz(state[5])])

    def body_pose(self, body: int) -> np.ndarray:
        """Return a body's base pose [x, y, z, qw, qx, qy, qz]."""
        pos, quat = self.p.getBasePositionAndOrientation(body, physicsClientId=self.client)
        return np.concatenate([pos, quat_xyzw_to_wxyz(quat)])

    def set_body_pose(self, body: int, pose7: Sequence[float]) -> None:
        """Teleport a body to a pose [x, y, z, qw, qx, qy, qz] at rest."""
        self.p.resetBasePositionAndOrientation(
            body, list(pose7[:3]), quat_wxyz_to_xyzw(pose7[3:]).tolist(),
            physicsClientId=self.client)
        self.p.resetBaseVelocity(body, [0.0, 0.0, 0.0], [0.0, 0.0, 0.0],
                                 physicsClientId=self.client)

    def cube_speed_m_s(self) -> float:
        """Return the cube's linear speed (m/s)."""
        lin, _ = self.p.getBaseVelocity(self.cube, physicsClientId=self.client)
        return float(np.linalg.norm(lin))

    def finger_contacts(self) -> Tuple[bool, bool]:
        """Return whether each finger touches the cube."""
        return tuple(
            len(self.p.getContactPoints(self.robot, self.cube, linkIndexA=f,
                                        physicsClientId=self.client)) > 0
            for f in self.fingers)

    def image(self, width: int, height: int, camera: CameraConfig,
              depth: bool) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """Render RGB (H, W, 3) uint8 and optionally depth (H, W, 1) float32 metres."""
        p = self.p
        view = p.computeViewMatrix(camera.eye_m, camera.target_m, camera.up,
                                   physicsClientId=self.client)
        proj = p.computeProjectionMatrixFOV(camera.fov_deg, width / float(height),
                                            camera.near_m, camera.far_m,
                                            physicsClientId=self.client)
        _, _, rgba, zbuf, _ = p.getCameraImage(
            width, height, view, proj, renderer=p.ER_TINY_RENDERER,
            flags=p.ER_NO_SEGMENTATION_MASK,
            physicsClientId=self.client)
        rgb = np.asarray(rgba, dtype=np.uint8).reshape(height, width, 4)[:, :, :3].copy()
        if not depth:
            return rgb, None
        z = np.asarray(zbuf, dtype=np.float64).reshape(height, width, 1)
        near, far = camera.near_m, camera.far_m
        # The z-buffer is non-linear in distance; invert the OpenGL projection to get metres.
        metres = far * near / (far - (far - near) * z)
        return rgb, metres.astype(np.float32)
