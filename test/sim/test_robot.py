"""Tests for the simulated arm's joint names and URDF limits."""

import os

from lam_ros.sim.robot import (
    ALL_JOINT_NAMES, HOME_JOINT_POS, joint_limits, JOINT_NAMES, panda_urdf_path)
import numpy as np
import pytest


def test_joint_names_follow_the_contract():
    assert JOINT_NAMES == tuple(f'panda_joint{i}' for i in range(1, 8)) + (
        'panda_finger_joint1',)
    assert ALL_JOINT_NAMES == JOINT_NAMES + ('panda_finger_joint2',)


def test_limits_come_from_the_panda_urdf():
    assert os.path.isfile(panda_urdf_path())
    limits = joint_limits()
    assert limits.joint_names == JOINT_NAMES
    # Values of franka_panda/panda.urdf in pybullet_data.
    np.testing.assert_allclose(limits.lower[[0, 3, 5, 7]], [-2.9671, -3.1416, -0.0873, 0.0])
    np.testing.assert_allclose(limits.upper[[1, 3, 5, 7]], [1.8326, 0.0, 3.8223, 0.04])
    assert np.all(limits.velocity > 0) and np.all(limits.effort > 0)
    assert np.all(HOME_JOINT_POS >= limits.lower) and np.all(HOME_JOINT_POS <= limits.upper)


def test_unknown_joint_is_a_clear_error():
    with pytest.raises(ValueError, match='panda_joint9'):
        joint_limits(('panda_joint1', 'panda_joint9'))


def test_light_visuals_urdf_keeps_the_robot_but_swaps_visual_meshes():
    from lam_ros.sim.robot import panda_light_visuals_urdf_path
    with open(panda_light_visuals_urdf_path()) as stream:
        text = stream.read()
    assert 'meshes/visual/' not in text and 'package://' not in text
    with open(panda_urdf_path()) as stream:
        original = stream.read()
    assert text.count('<joint ') == original.count('<joint ')
    assert text.count('<collision>') == original.count('<collision>')


def test_any_urdf_gets_light_visuals_from_its_collision_geometry():
    """The xArm's URDF (another layout): visual meshes become the collision hulls."""
    import xml.etree.ElementTree as ET
    from lam_ros.description import load_robot
    from lam_ros.sim.robot import panda_light_visuals_urdf_path
    source = load_robot('xarm6').urdf_path()
    light = ET.parse(panda_light_visuals_urdf_path(source)).getroot()
    original = ET.parse(source).getroot()
    assert len(light.findall('joint')) == len(original.findall('joint'))
    meshes = [m.get('filename') for m in light.iter('mesh')]
    assert meshes and all(os.path.isfile(m) for m in meshes), meshes
    link2 = next(link for link in light.iter('link') if link.get('name') == 'link2')
    visual, collision = link2.find('visual/geometry/mesh'), link2.find('collision/geometry/mesh')
    assert visual.get('filename') == collision.get('filename')
    assert visual.get('filename').endswith('_vhacd2.obj')
