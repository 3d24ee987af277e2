"""
The simulated arm as PyBullet sees it: names from the robot description, URDF helpers.

Every name, the home pose and the gripper range come from ``config/robots/panda.yaml``
(``lam_ros.description``); this module adds what only PyBullet needs.
"""

import os
from typing import Dict, Sequence, Tuple

from lam_ros.control.limits import JointLimits
from lam_ros.description import load_robot
from lam_ros.description.robot import urdf_joint_limits
import numpy as np

ROBOT = load_robot()
"""The description of the simulated arm (``DEFAULT_ROBOT``)."""

JOINT_NAMES: Tuple[str, ...] = ROBOT.joint_names
"""The commanded joints, in action / command order."""

ALL_JOINT_NAMES: Tuple[str, ...] = ROBOT.state_joint_names
"""The joints published on ``/joint_states`` (the mimic finger follows the commanded one)."""

ARM_JOINT_NAMES: Tuple[str, ...] = ROBOT.arm_joint_names
"""The revolute arm joints."""

GRASP_LINK_NAME = ROBOT.frames.tool
"""The link between the fingertips whose pose is the end-effector pose."""

HOME_JOINT_POS = np.array(ROBOT.home_pose)
"""A comfortable start configuration (rad, finger in m, gripper open) in JOINT_NAMES order."""

FINGER_OPEN_M = ROBOT.gripper.open_m
"""Finger position of a fully open gripper (per finger)."""

FINGER_CLOSED_M = ROBOT.gripper.closed_m
"""Finger position of a fully closed gripper (per finger)."""


def panda_urdf_path() -> str:
    """Return the path of the simulated arm's URDF (``urdf`` of its description)."""
    return ROBOT.urdf_path()


_LIGHT_URDF_CACHE: Dict[str, str] = {}


def panda_light_visuals_urdf_path(source: str = '') -> str:
    """
    Return a URDF whose visuals are its collision meshes, for fast image rendering.

    A URDF laid out as pybullet_data's Panda (``package://meshes/visual/``) takes the
    collision meshes of the same names; any other URDF (the xArm's) takes, link by link, the
    collision geometry as its visual geometry (:func:`_collision_visuals`); a URDF without
    collision meshes comes back unchanged.

    PyBullet's TinyRenderer spends ~95 % of a frame on the ~100k-triangle visual meshes; the
    collision hulls (~3k triangles) render over 20x faster. The file is derived at run time
    from ``panda_urdf_path()`` into a temporary directory, with absolute mesh paths into
    ``pybullet_data``; links, joints, inertias and collision shapes are unchanged.
    """
    import tempfile
    source = source or panda_urdf_path()
    cached = _LIGHT_URDF_CACHE.get(source)
    if cached and os.path.isfile(cached):
        return cached
    mesh_dir = os.path.join(os.path.dirname(source), 'meshes')
    with open(source, 'r', encoding='utf-8') as stream:
        text = stream.read()
    if 'package://meshes/visual/' in text:
        text = text.replace('package://meshes/visual/', 'package://meshes/collision/')
        text = text.replace('package://meshes/', mesh_dir + os.sep)
    else:
        text = _collision_visuals(text, os.path.dirname(source))
        if text is None:
            return source
    directory = tempfile.mkdtemp(prefix='lam_ros_panda_')
    path = os.path.join(directory, 'panda_light_visuals.urdf')
    with open(path, 'w', encoding='utf-8') as stream:
        stream.write(text)
    _LIGHT_URDF_CACHE[source] = path
    return path


def _collision_visuals(text: str, base_dir: str) -> 'str | None':
    """
    Return URDF ``text`` with each link drawn by its collision geometry, or None if unchanged.

    Mesh paths become absolute (``package://`` and relative ones are resolved against
    ``base_dir``, as PyBullet does), so the result loads from any directory.
    """
    import copy
    import xml.etree.ElementTree as ET
    root = ET.fromstring(text)
    changed = False
    for link in root.iter('link'):
        collision = link.find('collision')
        geometry = None if collision is None else collision.find('geometry')
        if geometry is None:
            continue
        for visual in link.findall('visual'):
            old = visual.find('geometry')
            mesh, new = old.find('mesh') if old is not None else None, geometry.find('mesh')
            if old is None or (mesh is not None and new is not None
                               and mesh.get('filename') == new.get('filename')):
                continue
            visual.remove(old)
            visual.append(copy.deepcopy(geometry))
            for origin in visual.findall('origin'):
                visual.remove(origin)
            if collision.find('origin') is not None:
                visual.append(copy.deepcopy(collision.find('origin')))
            changed = True
    if not changed:
        return None
    for mesh in root.iter('mesh'):
        name = mesh.get('filename', '')
        if name.startswith('package://'):
            name = name[len('package://'):]
        if name and not os.path.isabs(name):
            mesh.set('filename', os.path.join(base_dir, name))
    return ET.tostring(root, encoding='unicode')


def joint_limits(names: Sequence[str] = JOINT_NAMES, urdf_path: str = '') -> JointLimits:
    """Read position, velocity and effort limits of ``names`` from the arm's URDF."""
    return urdf_joint_limits(urdf_path or ROBOT.urdf_path(), names)


def joint_indices(client: int, body: int, names: Sequence[str]) -> Tuple[int, ...]:
    """Map joint names to PyBullet joint indices of ``body`` on ``client``."""
    import pybullet as p
    by_name = {}
    for i in range(p.getNumJoints(body, physicsClientId=client)):
        by_name[p.getJointInfo(body, i, physicsClientId=client)[1].decode()] = i
    missing = [n for n in names if n not in by_name]
    if missing:
        raise ValueError(f'body has no joints named {missing}; it has {sorted(by_name)}')
    return tuple(by_name[n] for n in names)


def link_index(client: int, body: int, name: str) -> int:
    """Return the PyBullet link index of the link called ``name``."""
    import pybullet as p
    for i in range(p.getNumJoints(body, physicsClientId=client)):
        if p.getJointInfo(body, i, physicsClientId=client)[12].decode() == name:
            return i
    raise ValueError(f'body has no link named {name!r}')
