"""Tests for finding the files the package ships."""

import os

from lam_ros.description.files import share_path, urdf_path
import pytest


def test_urdf_path_finds_the_authored_assets():
    for name in ('table.urdf', 'cube.urdf', 'target_zone.urdf'):
        assert os.path.isfile(urdf_path(name))


def test_share_path_finds_robot_descriptions():
    assert share_path('config', 'robots/panda.yaml').endswith(
        os.path.join('config', 'robots', 'panda.yaml'))


def test_urdf_path_rejects_bad_names():
    with pytest.raises(ValueError):
        urdf_path('../setup.py')
    with pytest.raises(FileNotFoundError, match='no_such.urdf'):
        urdf_path('no_such.urdf')
