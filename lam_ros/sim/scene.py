"""
The PyBullet workcell: an arm (any robot description) on a table, a cube, a target zone.

``ArmScene`` knows bodies, joints, motors, contacts and cameras, and nothing about
tasks or rewards; ``GraspEnv`` builds the tasks on top of it.
"""

import os
from typing import Optional, Sequence, Tuple, Union

from lam_ros.description import load_robot, RobotDescription
from lam_ros.description.files import urdf_path
from lam_ros.description.robot import urdf_joint_limits
from lam_ros.sim.config import CameraConfig
from lam_ros.sim.kinematics import quat_wxyz_to_xyzw, quat_xyzw_to_wxyz
from lam_ros.sim.robot import joint_indices, link_index, panda_light_visuals_urdf_path
import numpy as np
import transforms3d

FINGER_FRICTION = 1.0
"""Lateral friction of the finger pads; PyBullet's default slips on a 100 g cube."""


def has_display() -> bool:
    """Return True when a GUI window can be opened (X11 or Wayland)."""
    return bool(os.environ.get('DISPLAY') or os.environ.get('WAYLAND_DISPLAY'))


class ArmScene:
    """One PyBullet client holding the arm, the table, a cube and an optional target zone."""

    def __init__(self, physics_rate_hz: float, with_zone: bool, gui: bool = False,
                 light_visuals: bool = False,
                 robot: Union[None, str, RobotDescription] = None) -> None:
        """
        Connect (DIRECT, or GUI when ``gui``) and load every body once.

        ``robot`` is the description of the arm (default: the default robot);
        ``light_visuals`` draws the robot with its collision meshes (fast camera images).
        The gripper's mimic joints are driven in the sim to follow the commanded joint.
        """
        desc = load_robot(robot)
        self.robot_description = desc
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
        robot_urdf = desc.urdf_path()
        robot_urdf = panda_light_visuals_urdf_path(robot_urdf) if light_visuals else robot_urdf
        self.robot = p.loadURDF(robot_urdf, useFixedBase=True,
                                flags=p.URDF_USE_SELF_COLLISION_EXCLUDE_PARENT,
                                physicsClientId=cid)
        self.cube = self._load_cube()
        self.zone = (p.loadURDF(urdf_path('target_zone.urdf'), [0.5, 0.3, 0.0],
                                useFixedBase=True, physicsClientId=cid) if with_zone else None)
        grip = desc.gripper
        # Joints as on /joint_states: the commanded ones, then the mimic joints.
        self.joint_names = desc.state_joint_names
        self.joints = joint_indices(cid, self.robot, self.joint_names)
        self._gripper_at = desc.gripper_index
        # A linkage gripper (kind drive): the mimic joints follow where the drive joint *is*
        # (blocked by a grasped object), as the closed chain of the real gripper makes them;
        # PyBullet has no closed chains, so the sim re-targets them every physics step.
        self._linkage = grip.kind == 'drive' and bool(grip.mimic_joints)
        self._mimic_at = np.arange(len(desc.joint_names), len(self.joint_names))
        self._mimic_mult = np.asarray(grip.mimic_multipliers, dtype=np.float64)
        self.fingers = self._finger_links(cid, grip)
        self.grasp_link = link_index(cid, self.robot, desc.frames.tool)
        self._tool_offset = np.asarray(desc.frames.tool_offset, dtype=np.float64)
        limits = urdf_joint_limits(desc.urdf_path(), self.joint_names)
        self.effort = limits.effort.tolist()
        # The simulated controller limits its setpoint as ros2_control's joint limits do:
        # inside the position limits, moving at most the velocity limit per step.
        self.lower, self.upper = limits.lower.copy(), limits.upper.copy()
        self._max_step = limits.velocity * self.dt_s
        self._goal = np.zeros(len(self.joints))
        self._setpoint = np.zeros(len(self.joints))
        for finger in self.fingers:
            if grip.sim_pad_friction > 0:
                p.changeDynamics(self.robot, finger, lateralFriction=grip.sim_pad_friction,
                                 spinningFriction=0.001, frictionAnchor=1, physicsClientId=cid)
            else:
                p.changeDynamics(self.robot, finger, lateralFriction=FINGER_FRICTION,
                                 spinningFriction=0.001, physicsClientId=cid)
        self._initial_state = p.saveState(physicsClientId=cid)

    def _finger_links(self, cid: int, grip) -> Tuple[int, ...]:
        if grip.finger_links:
            return tuple(link_index(cid, self.robot, name) for name in grip.finger_links)
        names = (grip.joint,) + grip.mimic_joints if grip.commanded else ()
        return joint_indices(cid, self.robot, names)

    def _full(self, q: Sequence[float]) -> list:
        """Return positions of every state joint from a command (mimic joints follow)."""
        q = [float(v) for v in q]
        if self._gripper_at < 0:
            return q
        grip = self.robot_description.gripper
        q[self._gripper_at] = grip.joint_position(q[self._gripper_at])
        return q + list(grip.mimic_positions(q[self._gripper_at]))

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

    def reset_joints(self, q: Sequence[float]) -> None:
        """Teleport the robot to command ``q`` (``joint_names`` order) at rest and hold it."""
        full = np.clip(self._full(q), self.lower, self.upper)
        for idx, value in zip(self.joints, full):
            self.p.resetJointState(self.robot, idx, float(value), 0.0,
                                   physicsClientId=self.client)
        self._goal = full.copy()
        self._setpoint = full.copy()
        self._command()

    def set_joint_targets(self, q: Sequence[float]) -> None:
        """
        Command position targets (``joint_names`` order); the mimic joints follow.

        The targets are clipped into the URDF position limits; the controller's setpoint
        then moves towards them at no more than each joint's URDF velocity limit.
        """
        self._goal = np.clip(self._full(q), self.lower, self.upper)

    def _command(self) -> None:
        self.p.setJointMotorControlArray(
            self.robot, self.joints, self.p.POSITION_CONTROL,
            targetPositions=self._setpoint.tolist(), forces=self.effort,
            physicsClientId=self.client)

    def step(self, n: int) -> None:
        """Advance the physics by ``n`` time steps, moving the setpoint within the limits."""
        for _ in range(int(n)):
            if self._linkage:
                drive = self.p.getJointState(self.robot, self.joints[self._gripper_at],
                                             physicsClientId=self.client)[0]
                self._goal[self._mimic_at] = np.clip(self._mimic_mult * drive,
                                                     self.lower[self._mimic_at],
                                                     self.upper[self._mimic_at])
            gap = self._goal - self._setpoint
            if gap.any():
                self._setpoint = self._setpoint + np.clip(gap, -self._max_step, self._max_step)
                self._command()
            self.p.stepSimulation(physicsClientId=self.client)

    def joint_states(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return position, velocity and applied effort of the state joints."""
        states = self.p.getJointStates(self.robot, self.joints, physicsClientId=self.client)
        pos, vel, _, eff = zip(*states)
        return np.array(pos), np.array(vel), np.array(eff)

    def grasp_pose(self) -> np.ndarray:
        """Return the tool pose [x, y, z, qw, qx, qy, qz] (tool link plus tool offset)."""
        state = self.p.getLinkState(self.robot, self.grasp_link, computeForwardKinematics=True,
                                    physicsClientId=self.client)
        quat = quat_xyzw_to_wxyz(state[5])
        pos = np.asarray(state[4], dtype=np.float64)
        if self._tool_offset.any():
            pos = pos + transforms3d.quaternions.quat2mat(quat) @ self._tool_offset
        return np.concatenate([pos, quat])

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
        """Return whether the first and the second half of the finger links touch the cube."""
        touching = [len(self.p.getContactPoints(self.robot, self.cube, linkIndexA=f,
                                                physicsClientId=self.client)) > 0
                    for f in self.fingers]
        half = (len(touching) + 1) // 2
        return any(touching[:half]), any(touching[half:])

    def image(self, width: int, height: int, camera: CameraConfig,
              depth: bool) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """
        Render RGB (H, W, 3) uint8 and optionally depth (H, W, 1) float32 metres.

        A camera mounted on the ``tool`` moves with the tool point (:meth:`grasp_pose`).
        """
        p = self.p
        eye, target, up = camera.eye_m, camera.target_m, camera.up
        if camera.mount == 'tool':
            pose = self.grasp_pose()
            rot = transforms3d.quaternions.quat2mat(pose[3:])
            eye = (pose[:3] + rot @ np.asarray(eye)).tolist()
            target = (pose[:3] + rot @ np.asarray(target)).tolist()
            up = (rot @ np.asarray(up)).tolist()
        view = p.computeViewMatrix(eye, target, up, physicsClientId=self.client)
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


PandaScene = ArmScene
"""The former name of :class:`ArmScene` (the default robot is the Panda)."""
