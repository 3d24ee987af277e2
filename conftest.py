"""
Suite-wide rules: strict skips in CI, and a check that the suite leaves its venv as it was.

Make the source tree importable for pytest without an install (this file's folder is the
rootdir, which pytest puts on ``sys.path``).

``LAM_ROS_CI=1`` (set by ``.ci/run``) turns every skip into a failure, except the launch
tests' skip where ``launch`` / ``launch_ros`` are not installed (they are not on PyPI): in CI
rclpy, the message packages and the linters are installed, so a skip there means breakage.
"""

import importlib.metadata
import importlib.util
import os
import subprocess
import sys
import sysconfig

import pytest

ROOT = os.path.dirname(os.path.abspath(__file__))
CI = os.environ.get('LAM_ROS_CI') == '1'
# The only modules a CI run may lack: ROS's launch system is not on PyPI.
MAY_BE_MISSING = ('launch', 'launch_ros')


def _allowed_skip(reason: str) -> bool:
    return any(reason.startswith(f"could not import '{name}'") for name in MAY_BE_MISSING)


def _fail_skips_in_ci(report) -> None:
    if not (CI and report.skipped and isinstance(report.longrepr, tuple)):
        return
    if hasattr(report, 'wasxfail'):
        return
    reason = str(report.longrepr[2]).removeprefix('Skipped: ')
    if not _allowed_skip(reason):
        report.outcome = 'failed'
        report.longrepr = f'skipped in CI (LAM_ROS_CI=1), which must not happen: {reason}'


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Turn a test's skip into a failure in CI unless it is an allowed one."""
    outcome = yield
    _fail_skips_in_ci(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """Turn a module-level skip (``importorskip`` at import) into an error in CI."""
    outcome = yield
    _fail_skips_in_ci(outcome.get_result())


def _environment() -> dict:
    """Return the installed distributions of this interpreter's environment with versions."""
    site = {os.path.realpath(p) for p in (sysconfig.get_path('purelib'),
                                          sysconfig.get_path('platlib'))}
    found = {}
    for dist in importlib.metadata.distributions(path=sorted(site)):
        found[str(dist.metadata['Name']).lower()] = dist.version
    return found


def _lam_ros_executables() -> list:
    """Return the lam_ros executables installed in this environment (may be none)."""
    exes = [os.path.join(sys.prefix, 'bin', 'lam-ros')]
    lib = os.path.join(sys.prefix, 'lib', 'lam_ros')
    if os.path.isdir(lib):
        exes += [os.path.join(lib, f) for f in sorted(os.listdir(lib))]
    return [e for e in exes if os.path.isfile(e)]


@pytest.fixture(scope='session', autouse=True)
def environment_left_unchanged(request, tmp_path_factory):
    """
    After the suite, this environment is as it was, and its lam_ros executables run.

    The executables are run when the session ran ``test/test_package.py`` (the one test that
    installs) or in CI; a quick run of a few unit tests only compares the installed versions.
    """
    before = _environment()
    executables = _lam_ros_executables()
    yield
    after = _environment()
    changed = {k: (before.get(k), after.get(k)) for k in before.keys() | after.keys()
               if before.get(k) != after.get(k)}
    assert not changed, f'the suite changed the environment it runs in: {changed}'
    missing = [e for e in executables if not os.path.isfile(e)]
    assert not missing, f'the suite removed installed executables: {missing}'
    ran_install = any(item.path.name == 'test_package.py' for item in request.session.items)
    if not executables or not (CI or ran_install):
        return
    workdir = tmp_path_factory.mktemp('installed_executables')
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'AMENT_PREFIX_PATH')}
    cli = [e for e in executables if os.path.basename(e) == 'lam-ros']
    for exe in cli:
        result = subprocess.run([exe, '--help'], capture_output=True, text=True, env=env,
                                cwd=workdir, timeout=120)
        assert result.returncode == 0 and 'usage: lam-ros' in result.stdout, \
            f'{exe} --help after the suite: {result.returncode}\n{result.stdout}{result.stderr}'
    nodes = [e for e in executables if e not in cli]
    if nodes and (CI or importlib.util.find_spec('rclpy') is not None):
        from nodes.ros_harness import check_node_executables
        check_node_executables(nodes, str(workdir), env=env)
