"""CI runs what the README promises, strictly, on both ROS 2 distributions."""

import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _read(*path: str) -> str:
    with open(os.path.join(ROOT, *path)) as f:
        return f.read()


def test_ci_runs_the_readme_test_command():
    """``.ci/run`` runs exactly the test command the README gives a newcomer."""
    readme = _read('README.md')
    command = 'bash scripts/setup.sh && .venv/bin/python -m pytest test -q'
    assert f'\n{command}\n' in readme
    ci_lines = [line.strip() for line in _read('.ci', 'run').splitlines()]
    assert any(line.endswith(command) for line in ci_lines), ci_lines


def test_ci_is_strict_and_covers_jazzy():
    """``.ci/run`` turns skips into failures and also runs the ROS tests on Jazzy's wheels."""
    ci = _read('.ci', 'run')
    assert 'LAM_ROS_CI=1' in ci
    assert 'ROS_DISTRO=jazzy' in ci and 'test/nodes' in ci
