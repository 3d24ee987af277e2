"""The dataset index ``dataset.yaml``: read, atomic write, and the output-directory lock."""

import fcntl
import os
from pathlib import Path
import re
import tempfile
from typing import Any, Dict, List, Mapping, Optional

from lam_ros.data import messages
from lam_ros.description.files import file_mode, fsync_dir
import yaml

INDEX_NAME = 'dataset.yaml'
LOCK_NAME = '.lam_ros_recorder.lock'
FORMAT_VERSION = 1
EPISODE_RE = re.compile(r'^episode_(\d{6,})$')

# Episode states in dataset.yaml. RECORDING only exists while a recorder is writing the
# episode (or after a crash, until recovery turns it into INTERRUPTED).
COMPLETE = 'complete'
DISCARDED = 'discarded'
INTERRUPTED = 'interrupted'
RECORDING = 'recording'
STATUSES = (COMPLETE, DISCARDED, INTERRUPTED, RECORDING)


def episode_name(index: int) -> str:
    """Return the directory / bag name of episode ``index`` (``episode_000042``)."""
    return f'episode_{int(index):06d}'


def episode_index(name: str) -> Optional[int]:
    """Return the number in an episode name, or None when ``name`` is not one."""
    match = EPISODE_RE.match(name)
    return int(match.group(1)) if match else None


def fsync_file(path: Path) -> None:
    """Flush a file's data to disk."""
    with open(path, 'rb') as f:
        os.fsync(f.fileno())


def read_index(output_dir: Path) -> Optional[Dict[str, Any]]:
    """Return the parsed ``dataset.yaml`` of ``output_dir``, or None when there is none."""
    path = Path(output_dir) / INDEX_NAME
    if not path.exists():
        return None
    try:
        with open(path, encoding='utf-8') as f:
            data = yaml.safe_load(f)
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        where = getattr(err, 'problem_mark', None)
        at = f' (line {where.line + 1})' if where is not None else ''
        raise ValueError(f'{path} is corrupt{at}: it is not valid YAML; restore it from a '
                         'backup or move it away (episodes are rebuilt from the bag '
                         'directories)') from None
    if not isinstance(data, dict) or not isinstance(data.get('episodes', []), list):
        raise ValueError(f'{path} is not a lam_ros dataset index (expected a mapping with an '
                         "'episodes' list); restore it or move it away")
    data.setdefault('episodes', [])
    return data


def write_index(output_dir: Path, index: Dict[str, Any]) -> None:
    """Replace ``dataset.yaml`` atomically: a reader or a crash sees the old or the new file."""
    output_dir = Path(output_dir)
    fd, tmp = tempfile.mkstemp(prefix='.dataset.', suffix='.yaml.tmp', dir=str(output_dir))
    try:
        os.fchmod(fd, file_mode())  # mkstemp makes it 0600; give it the umask's mode
        with os.fdopen(fd, 'w', encoding='utf-8') as f:
            yaml.safe_dump(index, f, sort_keys=False, default_flow_style=None)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, output_dir / INDEX_NAME)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_dir(output_dir)


def find_entry(index: Dict[str, Any], name: str) -> Optional[Dict[str, Any]]:
    """Return the episode entry called ``name`` in ``index``, or None."""
    for entry in index['episodes']:
        if entry.get('name') == name:
            return entry
    return None


def next_episode_index(output_dir: Path, index: Dict[str, Any]) -> int:
    """Return the first episode number after every listed entry and every episode directory."""
    used: List[int] = [-1]
    for entry in index['episodes']:
        number = episode_index(str(entry.get('name', '')))
        if number is not None:
            used.append(number)
    for child in Path(output_dir).iterdir():
        number = episode_index(child.name)
        if number is not None:
            used.append(number)
    return max(used) + 1


def open_index(output_dir: Path, robot: str, joint_names: list, task: str, rates: dict,
               roles: dict, topic_types: Dict[str, str],
               gripper: Dict[str, Any]) -> Dict[str, Any]:
    """
    Return the index of ``output_dir``: created (and written) or checked and extended.

    A directory holds one robot, task and joint order; later sessions may add topics.
    """
    index = read_index(output_dir)
    if index is None:
        index = {'format_version': FORMAT_VERSION, 'robot': robot, 'task': task,
                 'joint_names': joint_names, 'topics': roles,
                 'topic_types': dict(topic_types), 'rates': rates, 'episodes': []}
        if gripper:
            index['gripper'] = gripper
        write_index(output_dir, index)
        return index
    for key, value in (('robot', robot), ('task', task), ('joint_names', joint_names)):
        if index.get(key) not in (None, value):
            raise ValueError(f'{output_dir} holds a dataset with {key}={index[key]!r}, '
                             f'not {value!r}; use another output_dir for a different '
                             f'{key}')
        index[key] = value
    # Later sessions may record more topics; the index lists the union.
    index['topic_types'] = {**(index.get('topic_types') or {}), **topic_types}
    index['topics'] = {**roles, **(index.get('topics') or {})}
    index['rates'] = {**(index.get('rates') or {}), **rates}
    index.setdefault('format_version', FORMAT_VERSION)
    return index


def infer_roles(topics: Mapping[str, str], action_topic: Optional[str] = None) -> Dict[str, str]:
    """
    Return role -> topic (``joint_state``, ``command``, ``object_pose``, ...) from types.

    Dataset readers use the roles to find signals without knowing the topic names.
    """
    roles: Dict[str, str] = {}
    if action_topic:
        roles['command'] = action_topic
    for topic, msgtype in topics.items():
        lowered = topic.lower()
        role = None
        if msgtype == messages.JOINT_STATE:
            role = 'joint_state'
        elif msgtype in (messages.FLOAT64_ARRAY, messages.JOINT_TRAJECTORY):
            role = 'command'
        elif msgtype == messages.POSE_STAMPED:
            role = 'goal_pose' if 'goal' in lowered or 'target' in lowered else 'object_pose'
        elif msgtype == messages.IMAGE and 'depth' not in lowered:
            role = 'image'
        elif msgtype == messages.IMAGE:
            role = 'depth'
        elif msgtype == messages.CAMERA_INFO:
            role = 'camera_info'
        elif msgtype == messages.BOOL and 'success' in lowered:
            role = 'success'
        if role is not None and role not in roles:
            roles[role] = topic
    return roles


class DirectoryLock:
    """An exclusive advisory lock on an output directory, released by the kernel on a crash."""

    def __init__(self, output_dir: Path) -> None:
        """Take the lock or raise RuntimeError when another recorder holds it."""
        self._path = Path(output_dir) / LOCK_NAME
        self._fd: Optional[int] = os.open(str(self._path), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            self._fd = None
            raise RuntimeError(f'{output_dir} is in use by another recorder (lock {self._path}); '
                               'stop it or choose another output_dir') from None

    def release(self) -> None:
        """Release the lock (idempotent)."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
