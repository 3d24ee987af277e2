"""
ament_flake8 over the package's Python, as ``colcon test`` runs it.

Set up as ``ros2 pkg create`` does, with the paths named: run from the source tree, a bare
``main_with_errors(argv=[])`` would also lint ``build/`` (pip builds there, colcon does not).
"""

import os

import pytest

main_with_errors = pytest.importorskip('ament_flake8.main').main_with_errors

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PATHS = ['lam_ros', 'test', 'launch', 'benchmarks', 'setup.py', 'conftest.py']


@pytest.mark.flake8
@pytest.mark.linter
def test_flake8(monkeypatch):
    """Code follows ROS 2's flake8 rules (99 columns, import order, quotes, docstrings)."""
    monkeypatch.chdir(ROOT)
    rc, errors = main_with_errors(argv=PATHS)
    assert rc == 0, \
        'Found %d code style errors / warnings:\n' % len(errors) + \
        '\n'.join(errors)
