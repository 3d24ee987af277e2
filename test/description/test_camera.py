"""Tests for the camera defaults and intrinsics."""

import math

from lam_ros.description import CameraConfig, pinhole_intrinsics
import numpy as np
import pytest


def test_intrinsics_project_the_field_of_view_onto_the_image_edge():
    k = pinhole_intrinsics(84, 64, 55.0)
    assert k[0, 0] == k[1, 1] and k[2, 2] == 1.0
    # A ray at half the vertical FOV lands on the top pixel centre's outer edge.
    y = k[1, 1] * math.tan(math.radians(27.5)) + k[1, 2]
    assert y == pytest.approx(63.5)
    np.testing.assert_allclose(k[:2, 2], [41.5, 31.5])
    np.testing.assert_array_equal(CameraConfig(width=84, height=64).intrinsics(), k)


def test_bad_camera_values_are_rejected():
    with pytest.raises(ValueError, match='fov_y_deg'):
        pinhole_intrinsics(84, 84, 180.0)
    with pytest.raises(ValueError, match='near_m'):
        CameraConfig(near_m=2.0, far_m=1.0)


def test_camera_configs_merge_settings_onto_the_named_defaults():
    from lam_ros.description.camera import camera_configs, DEFAULT_CAMERAS
    cams = camera_configs()
    assert set(cams) == {'scene', 'wrist'} and not any(c.enabled for c in cams.values())
    assert cams['scene'].mount == 'base' and cams['wrist'].mount == 'tool'
    cams = camera_configs({'wrist': {'enabled': True, 'width': 64, 'rate_hz': 15.0}})
    wrist = cams['wrist']
    assert (wrist.enabled, wrist.width, wrist.height, wrist.rate_hz) == (True, 64, 84, 15.0)
    assert wrist.eye_m == DEFAULT_CAMERAS['wrist'].eye_m and not cams['scene'].enabled
    assert [n for n, c in camera_configs('scene, wrist').items() if c.enabled] == \
        ['scene', 'wrist']
    assert camera_configs({'top': {'enabled': True}})['top'].mount == 'base'
    with pytest.raises(ValueError, match=r"cameras\['wrist'\]: unknown fields \['widht'\]"):
        camera_configs({'wrist': {'widht': 64}})
    with pytest.raises(ValueError, match='lower-case identifier'):
        camera_configs({'Wrist': {}})


@pytest.mark.parametrize('change, message', [
    ({'mount': 'hand'}, 'mount'), ({'rate_hz': 0.0}, 'rate_hz'),
    ({'eye_m': (0.0, 0.0)}, 'eye_m'), ({'target_m': (1.1, 0.0, 0.75)}, 'must differ')])
def test_bad_camera_settings_name_the_field(change, message):
    with pytest.raises(ValueError, match=message):
        CameraConfig(**change)


@pytest.mark.parametrize('robot', ['panda', 'xarm6'])
def test_robot_descriptions_name_each_camera_topic_and_frame(robot):
    from lam_ros.description import load_robot
    desc = load_robot(robot)
    assert desc.topics.camera_topic('scene', 'image') == '/scene_camera/image_raw'
    assert desc.topics.camera_topic('wrist', 'depth') == '/wrist_camera/depth/image_raw'
    assert desc.topics.camera_topic('wrist', 'camera_info') == '/wrist_camera/camera_info'
    assert desc.frames.camera_frame('wrist') == 'wrist_camera_optical_frame'
    # A camera the description does not list gets the conventional names.
    assert desc.topics.camera_topic('top', 'image') == '/top_camera/image_raw'
    assert desc.frames.camera_frame('top') == 'top_camera_optical_frame'
    with pytest.raises(ValueError, match='unknown camera topic role'):
        desc.topics.camera_topic('scene', 'ir')


def test_an_old_single_camera_description_gets_one_clear_error():
    from lam_ros.description import load_robot, RobotDescription
    data = load_robot('panda').to_dict()
    data['topics'].pop('cameras')
    data['topics']['image'] = '/camera/image_raw'
    with pytest.raises(ValueError, match=r'topics.image is the old single-camera entry.*'
                                         r'topics.cameras'):
        RobotDescription.from_dict(data, 'arm.yaml')
    data = load_robot('panda').to_dict()
    data['frames']['cameras'] = {'Scene': 'x'}
    with pytest.raises(ValueError, match='frames.cameras'):
        RobotDescription.from_dict(data, 'arm.yaml')
