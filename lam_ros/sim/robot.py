"""The Franka Panda as the package sees it: joint names, limits and the URDF location.

The URDF is the one shipped with ``pybullet_data``; it is read in place, never copied.
"""

import os
from typing import Dict, Sequence, Tuple

import numpy as np

from lam_ros.control.limits import JointLimits, load_urdf_limits

JOINT_NAMES: Tuple[str, ...] = tuple(
    [f'panda_joint{i}' for i in range(1, 8)] + ['panda_finger_joint1'])
"""The 8 commanded joints, in action / command order."""

ALL_JOINT_NAMES: Tuple[str, ...] = JOINT_NAMES + ('panda_finger_joint2',)
"""The 9 joints published on ``/joint_states`` (the second finger mirrors the first)."""

ARM_JOINT_NAMES: Tuple[str, ...] = JOINT_NAMES[:7]
"""The 7 revolute arm joints."""

GRASP_LINK_NAME = 'panda_grasptarget'
"""The link between the fingertips whose pose is the end-effector pose."""

HOME_JOINT_POS = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785, 0.04])
"""A comfortable start configuration (rad, finger in m, gripper open) in JOINT_NAMES order."""

FINGER_OPEN_M = 0.04
"""Finger position of a fully open gripper (per finger)."""

FINGER_CLOSED_M = 0.0
"""Finger position of a fully closed gripper (per finger)."""


def panda_urdf_path() -> str:
    """Return the path of the Panda URDF inside ``pybullet_data``."""
    import pybullet_data
    path = os.path.join(pybullet_data.getDataPath(), 'franka_panda', 'panda.urdf')
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f'Panda URDF not found at {path}; reinstall the pybullet package '
            '(it ships pybullet_data/franka_panda/panda.urdf).')
    return path


_LIGHT_URDF_CACHE: Dict[str, str] = {}


def panda_light_visuals_urdf_path() -> str:
    """Return a Panda URDF whose visuals are its collision meshes, for fast image rendering.

    PyBullet's TinyRenderer spends ~95 % of a frame on the ~100k-triangle visual meshes; the
    collision hulls (~3k triangles) render over 20x faster. The file is derived at run time
    from ``panda_urdf_path()`` into a temporary directory, with absolute mesh paths into
    ``pybullet_data``; links, joints, inertias and collision shapes are unchanged.
    """
    import tempfile
    source = panda_urdf_path()
    cached = _LIGHT_URDF_CACHE.get(source)
    if cached and os.path.isfile(cached):
        return cached
    mesh_dir = os.path.join(os.path.dirname(source), 'meshes')
    with open(source, 'r', encoding='utf-8') as stream:
        text = stream.read()
    text = text.replace('package://meshes/visual/', 'package://meshes/collision/')
    text = text.replace('package://meshes/', mesh_dir + os.sep)
    directory = tempfile.mkdtemp(prefix='lam_ros_panda_')
    path = os.path.join(directory, 'panda_light_visuals.urdf')
    with open(path, 'w', encoding='utf-8') as stream:
        stream.write(text)
    _LIGHT_URDF_CACHE[source] = path
    return path


_LIMITS_CACHE: Dict[str, JointLimits] = {}


def joint_limits(names: Sequence[str] = JOINT_NAMES, urdf_path: str = '') -> JointLimits:
    """Read position, velocity and effort limits of ``names`` from the Panda URDF."""
    path = urdf_path or panda_urdf_path()
    if path not in _LIMITS_CACHE:
        _LIMITS_CACHE[path] = load_urdf_limits(path)
    return _LIMITS_CACHE[path].select(names)


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
