"""
Checks the ``lam-ros`` commands run on their options before any work starts.

Each returns quietly or raises ``ValueError`` with one line that says what to do; the
argparse ``type=`` helpers raise ``argparse.ArgumentTypeError`` instead, so the parser prints
the usage line with it. Nothing here imports torch, PyBullet or ROS.
"""

import argparse
import difflib
import importlib.util
import os
from typing import Iterable, List, Optional, Sequence

CHECKPOINT_FILES = ('config.json', 'model.safetensors')
"""What a checkpoint directory holds (``lam_ros.policy.checkpoint``)."""


def task_name(value: str) -> str:
    """Argparse type of ``--task``: a known task ('' for none), or an error listing them."""
    from lam_ros.description.task import TASK_NAMES
    if value in TASK_NAMES or value == '':
        return value
    hint = closest(value, TASK_NAMES)
    raise argparse.ArgumentTypeError(
        f'{value} is not a task; tasks: {", ".join(TASK_NAMES)}'
        + (f' (did you mean {hint[0]}?)' if hint else ''))


def non_negative(kind: type, unit: str = '') -> 'argparse._ActionType':
    """Return an argparse type converting to ``kind`` and rejecting values below 0."""
    def convert(text: str) -> object:
        value = kind(text)
        if not value >= 0:
            raise argparse.ArgumentTypeError(f'must be >= 0{" " + unit if unit else ""}, got '
                                             f'{text}')
        return value
    convert.__name__ = kind.__name__
    return convert


def positive(kind: type) -> 'argparse._ActionType':
    """Return an argparse type converting to ``kind`` and rejecting values <= 0."""
    def convert(text: str) -> object:
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f'must be > 0, got {text}')
        return value
    convert.__name__ = kind.__name__
    return convert


def closest(name: str, names: Iterable[str], n: int = 3) -> List[str]:
    """Return up to ``n`` of ``names`` closest to ``name`` (also matching by episode number)."""
    names = list(names)
    digits = ''.join(c for c in name if c.isdigit())
    if digits:
        same_number = [x for x in names
                       if ''.join(c for c in x if c.isdigit()).lstrip('0') == digits.lstrip('0')]
        if same_number:
            return same_number[:n]
    return difflib.get_close_matches(name, names, n=n, cutoff=0.5)


def checkpoint_dir(path: str, flag: str = '--checkpoint') -> str:
    """Return ``path`` when it is a checkpoint directory; ValueError says which one to use."""
    if os.path.isfile(os.path.join(path, CHECKPOINT_FILES[0])):
        return path
    inside = [name for name in ('best', 'last')
              if os.path.isfile(os.path.join(path, name, CHECKPOINT_FILES[0]))]
    if inside:
        raise ValueError(f'{flag} {path} is a run directory, not a checkpoint; did you mean '
                         f'{os.path.join(path, inside[0])}?')
    if not os.path.exists(path):
        raise ValueError(f'{flag} {path} does not exist')
    raise ValueError(f'{flag} {path} is not a checkpoint (no {CHECKPOINT_FILES[0]}); pass a '
                     'RUN_DIR/best or RUN_DIR/last written by lam-ros train')


def output_file(path: Optional[str], flag: str,
                suffixes: Optional[Sequence[str]] = None) -> None:
    """Check that ``path`` can be written: its suffix, its folder (made if missing)."""
    if not path:
        return
    if suffixes and not path.lower().endswith(tuple(suffixes)):
        raise ValueError(f'{flag} {path} must end in {" or ".join(suffixes)}')
    if os.path.isdir(path):
        raise ValueError(f'{flag} {path} is a directory; give a file name')
    writable_dir(os.path.dirname(os.path.abspath(path)), flag, path)


def writable_dir(directory: str, flag: str, shown: Optional[str] = None) -> None:
    """Make ``directory`` (the command would, a moment later) and check it is writable."""
    existing = os.path.abspath(directory)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ValueError(f'{flag} {shown or directory}: {existing} is a file, not a folder')
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as err:
        raise ValueError(f'{flag} {shown or directory}: cannot create {directory}: '
                         f'{err.strerror}') from err
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ValueError(f'{flag} {shown or directory}: cannot write in {directory} '
                         '(permission denied)')


def video_file(path: Optional[str], flag: str = '--gif') -> None:
    """Check a video output: .gif (Pillow) or .mp4 (imageio + imageio-ffmpeg installed)."""
    output_file(path, flag, ('.gif', '.mp4'))
    if path and path.lower().endswith('.mp4'):
        missing = [m for m in ('imageio', 'imageio_ffmpeg') if importlib.util.find_spec(m) is None]
        if missing:
            raise ValueError(f'{flag} {path}: writing .mp4 needs {" and ".join(missing)} '
                             '(pip install imageio imageio-ffmpeg); or write a .gif')
    if path and path.lower().endswith('.gif') and importlib.util.find_spec('PIL') is None:
        raise ValueError(f'{flag} {path}: writing .gif needs Pillow (pip install pillow)')
