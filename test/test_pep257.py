"""
ament_pep257 over the package's Python, as ``colcon test`` runs it.

Set up as ``ros2 pkg create`` does, with the paths named (see test_flake8.py).
"""

import os

import pytest

main = pytest.importorskip('ament_pep257.main').main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PATHS = ['lam_ros', 'test', 'launch', 'benchmarks', 'setup.py', 'conftest.py']


@pytest.mark.linter
@pytest.mark.pep257
def test_pep257(monkeypatch):
    """Docstrings follow ROS 2's pep257 conventions."""
    monkeypatch.chdir(ROOT)
    rc = main(argv=PATHS)
    assert rc == 0, 'Found code style errors / warnings'
