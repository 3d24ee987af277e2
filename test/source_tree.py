"""Copy the package's source tree for a test install, leaving out what is not source."""

import fnmatch
import os
import shutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Top-level entries that are never source: VCS, venvs (.venv, .venv-jazzy: GBs of torch),
# colcon's build/install/log, outputs, caches.
_TOP_LEVEL = ('.git', '.venv*', 'build', 'install', 'log', 'runs', 'data', 'outputs',
              '*.egg-info', '.pytest_cache', '.hypothesis')


def _ignore(directory: str, names: list) -> set:
    ignored = {n for n in names if n == '__pycache__'}
    if os.path.samefile(directory, ROOT):
        ignored |= {n for n in names if any(fnmatch.fnmatch(n, p) for p in _TOP_LEVEL)}
    return ignored


def copy_source(dest: str) -> str:
    """Copy the source tree to dest (which must not exist) and return dest."""
    shutil.copytree(ROOT, dest, ignore=_ignore)
    return str(dest)
