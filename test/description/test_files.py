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


def test_the_source_tree_wins_over_an_older_installed_copy(tmp_path, monkeypatch):
    """Edits in the checkout take effect even where AMENT_PREFIX_PATH has an old install."""
    share = tmp_path / 'share' / 'lam_ros'
    (share / 'config' / 'robots').mkdir(parents=True)
    (share / 'config' / 'robots' / 'panda.yaml').write_text('old: copy\n')
    index = tmp_path / 'share' / 'ament_index' / 'resource_index' / 'packages'
    index.mkdir(parents=True)
    (index / 'lam_ros').write_text('')
    monkeypatch.setenv('AMENT_PREFIX_PATH', str(tmp_path))
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert share_path('config', 'robots/panda.yaml') == os.path.join(
        root, 'config', 'robots', 'panda.yaml')
