"""
Files: find the ones the package ships, write outputs durably with the user's permissions.

``share_path`` finds ``urdf/`` and ``config/`` files installed or in the source tree. Outputs
(dataset.yaml, checkpoints) are written under a temporary name and renamed into place;
``file_mode`` / ``dir_mode`` give those temporaries the permissions an ordinary ``open()`` or
``mkdir()`` would (0644 / 0755 under the usual umask 022), where ``mkstemp`` and ``mkdtemp``
create them private (0600 / 0700).
"""

import os
import sys
import threading

PACKAGE_NAME = 'lam_ros'


def share_path(folder: str, name: str) -> str:
    """
    Return the absolute path of ``<folder>/<name>`` among the package's shared files.

    Code imported from a source tree (``package.xml`` next to ``lam_ros/``) reads that tree's
    files, so an edit there takes effect even with an older copy installed; otherwise the
    installed share directory (``share/lam_ros/<folder>`` via ament_index), then the prefix
    the package was pip-installed into (a venv needs no AMENT_PREFIX_PATH).
    """
    if not name or os.path.isabs(name) or '..' in name.split('/'):
        raise ValueError(f'expected a file name inside {folder}/ such as "cube.urdf" or '
                         f'"robots/panda.yaml", got {name!r}')
    tried = []
    package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if os.path.isfile(os.path.join(package_parent, 'package.xml')):
        candidate = os.path.join(package_parent, folder, name)  # the source tree
        tried.append(candidate)
        if os.path.isfile(candidate):
            return candidate
    try:
        from ament_index_python.packages import (
            get_package_share_directory, PackageNotFoundError)
        try:
            candidate = os.path.join(get_package_share_directory(PACKAGE_NAME), folder, name)
            tried.append(candidate)
            if os.path.isfile(candidate):
                return candidate
        except (PackageNotFoundError, ValueError, LookupError, OSError) as err:
            # OSError: AMENT_PREFIX_PATH unset, as in a plain venv or the source tree.
            tried.append(f'ament_index ({err})')
    except ImportError:
        tried.append('ament_index_python not installed')
    candidates = [
        # <prefix>/lib/pythonX.Y/site-packages/lam_ros -> <prefix>/share/lam_ros
        os.path.join(package_parent, '..', '..', '..', 'share', PACKAGE_NAME, folder, name),
        os.path.join(sys.prefix, 'share', PACKAGE_NAME, folder, name),
    ]
    for candidate in candidates:
        candidate = os.path.normpath(candidate)
        tried.append(candidate)
        if os.path.isfile(candidate):
            return candidate
    raise FileNotFoundError(
        f'{folder}/{name} not found; tried: {"; ".join(tried)}. Install the package '
        '(colcon build / pip install .) with AMENT_PREFIX_PATH set, or run from the source tree.')


def urdf_path(name: str) -> str:
    """Return the absolute path of ``urdf/<name>`` (see :func:`share_path`)."""
    return share_path('urdf', name)


_UMASK_LOCK = threading.Lock()


def _umask() -> int:
    # os.umask can only be read by setting it; the lock keeps the round trip atomic here.
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def file_mode() -> int:
    """Return the mode a new file gets from ``open()`` under the current umask."""
    return 0o666 & ~_umask()


def dir_mode() -> int:
    """Return the mode a new directory gets from ``mkdir()`` under the current umask."""
    return 0o777 & ~_umask()


def fsync_dir(path: 'os.PathLike[str] | str') -> None:
    """Make renames inside the directory ``path`` durable (a no-op where unsupported)."""
    try:
        fd = os.open(os.fspath(path), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
