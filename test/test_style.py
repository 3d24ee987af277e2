"""Style checks run with the suite, as ``ament_flake8`` and ``ament_pep257`` would."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON_PATHS = ['lam_ros', 'test', 'launch', 'benchmarks', 'setup.py', 'conftest.py']


def _run(module: str, args: list) -> subprocess.CompletedProcess:
    paths = [p for p in PYTHON_PATHS if os.path.exists(os.path.join(ROOT, p))]
    return subprocess.run([sys.executable, '-m', module, *args, *paths], cwd=ROOT,
                          capture_output=True, text=True)


@pytest.mark.linter
def test_flake8():
    """Code follows PEP 8 with ROS's 99-column lines."""
    pytest.importorskip('flake8')
    result = _run('flake8', ['--config', 'setup.cfg'])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.linter
def test_pep257():
    """Public modules, classes and functions of the package carry pep257 docstrings."""
    pytest.importorskip('pydocstyle')
    result = subprocess.run(
        [sys.executable, '-m', 'pydocstyle', '--convention=pep257',
         '--add-ignore=D203,D212,D404', '--match=(?!test_).*\\.py', 'lam_ros'],
        cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ci_runs_the_readme_test_command():
    """`.ci/run` runs exactly the test command the README gives a newcomer."""
    with open(os.path.join(ROOT, 'README.md')) as f:
        readme = f.read()
    with open(os.path.join(ROOT, '.ci', 'run')) as f:
        ci_lines = [line.strip() for line in f if 'pytest' in line]
    assert len(ci_lines) == 1, ci_lines
    assert ci_lines[0] in readme
