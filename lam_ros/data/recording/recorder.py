"""
Crash-safe recording of demonstration episodes: one rosbag2 MCAP bag per episode.

Layout of an output directory (see ``docs/architecture.md``)::

    dataset.yaml        robot, joint_names, topics (role -> topic), topic_types, rates, episodes
    episode_000000/     rosbag2 bag: metadata.yaml + episode_000000.mcap

Crash safety: ``dataset.yaml`` lists an episode as ``recording`` before its bag is created
and is only ever replaced atomically; the bag's MCAP chunks are flushed to the OS every
``flush_interval_s``, so a killed process loses at most that much. Opening the directory
again (or :func:`recover_dataset`) rewrites an unfinished bag from its intact chunks and
marks it ``interrupted``. Episode numbers only grow; an existing bag is never replaced.
"""

from pathlib import Path
import shutil
import threading
import time
from typing import Any, Dict, Mapping, Optional, Sequence, Union

from lam_ros.data import messages
from lam_ros.data.recording import index as idx
from lam_ros.data.recording.checks import EpisodeChecks, TopicWatch
from lam_ros.data.recording.recover import recover_locked, RecoveryReport
from lam_ros.data.recording.repair import bag_mcap_path
from lam_ros.description.files import fsync_dir
from rosbags.rosbag2 import StoragePlugin, Writer, WriterError

PathLike = Union[str, Path]

__all__ = ['DatasetRecorder', 'NotReady', 'RecordingError', 'RecoveryReport',
           'recover_dataset', 'infer_roles']


class RecordingError(RuntimeError):
    """Writing an episode failed (disk full, permissions); the episode has been stopped."""


class NotReady(RuntimeError):
    """An episode cannot start yet: a required topic is silent."""


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


def recover_dataset(output_dir: PathLike) -> RecoveryReport:
    """
    Finish what a crashed recorder left in ``output_dir`` and return what was done.

    Unfinished bags are rebuilt from their intact MCAP chunks and marked ``interrupted``;
    bags that were closed but not yet listed get the outcome stored in their metadata.
    Raises RuntimeError when a live recorder holds the directory.
    """
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        raise ValueError(f'{output_dir} is not a directory; expected a recorder output_dir')
    lock = idx.DirectoryLock(output_dir)
    try:
        return recover_locked(output_dir)
    finally:
        lock.release()


class DatasetRecorder:
    """
    Writes episodes of ROS messages into bags under one output directory.

    ``topics`` maps topic -> message type (``sensor_msgs/msg/JointState``); ``rates`` holds
    nominal rates such as ``control_rate_hz``. Data passed to :meth:`write` may be CDR bytes
    (as a raw subscription delivers them) or a ``rosbags`` message object. Not thread-safe
    beyond an internal lock around each call.
    """

    def __init__(self, output_dir: PathLike, robot: str, joint_names: Sequence[str],
                 topics: Mapping[str, str], rates: Mapping[str, float], task: str, *,
                 action_topic: Optional[str] = None,
                 roles: Optional[Mapping[str, str]] = None,
                 flush_interval_s: float = 0.5, normalize_cdr: bool = True,
                 required_topics: Sequence[str] = (), required_max_age_s: float = 1.0,
                 gripper: Optional[Mapping[str, Any]] = None) -> None:
        """
        Open (create or continue) ``output_dir``, recovering a crashed session first.

        ``required_topics`` must have been :meth:`heard` within ``required_max_age_s`` for
        :meth:`start_episode` to start; an episode without them is flagged when it stops.
        ``gripper`` is the robot's gripper model written to dataset.yaml (default: that of
        the robot description named ``robot``, when there is one).
        """
        if not topics:
            raise ValueError('topics is empty; expected at least one topic -> message type')
        for topic, msgtype in topics.items():
            if not str(topic).startswith('/'):
                raise ValueError(f'topic {topic!r} must be an absolute name starting with "/"')
            if msgtype not in messages.TYPESTORE.types:
                raise ValueError(f'unknown message type {msgtype!r} for {topic}; expected a '
                                 'ROS 2 type such as sensor_msgs/msg/JointState')
        if action_topic is not None and action_topic not in topics:
            raise ValueError(f'action_topic {action_topic!r} is not one of the recorded topics '
                             f'{sorted(topics)}')
        missing = [t for t in required_topics if t not in topics]
        if missing:
            raise ValueError(f'required_topics {missing} are not recorded; expected some of '
                             f'{sorted(topics)}')
        if flush_interval_s <= 0:
            raise ValueError(f'flush_interval_s must be > 0 seconds, got {flush_interval_s}')
        self.output_dir = Path(output_dir).expanduser()
        self.topics = {str(k): str(v) for k, v in topics.items()}
        self.flush_interval_s = float(flush_interval_s)
        self.normalize_cdr = bool(normalize_cdr)
        self._gripper = dict(gripper) if gripper is not None else _gripper_model(robot)
        self.required_topics = list(required_topics)
        self.required_max_age_s = float(required_max_age_s)
        self.watch = TopicWatch()
        self._joint_names = list(joint_names)
        self._action_topic = action_topic
        self._checks = EpisodeChecks(None, None, self._joint_names)
        self._lock = threading.Lock()
        try:
            self.output_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RecordingError(f'cannot create output_dir {self.output_dir}: {exc.strerror}; '
                                 'expected a writable directory path') from exc
        if not self.output_dir.is_dir():
            raise ValueError(f'output_dir {self.output_dir} exists and is not a directory')
        try:
            self._dir_lock = idx.DirectoryLock(self.output_dir)
        except OSError as exc:
            raise RecordingError(f'cannot lock output_dir {self.output_dir}: {exc.strerror}; '
                                 'expected a writable directory') from None
        try:
            self.last_recovery = recover_locked(self.output_dir)
            self._index = self._open_index(robot, list(joint_names), task, dict(rates),
                                           dict(roles or infer_roles(self.topics, action_topic)))
        except OSError as exc:
            self._dir_lock.release()
            raise RecordingError(f'cannot prepare {self.output_dir}: {exc.strerror}; check free '
                                 'disk space and write permission') from None
        except BaseException:
            self._dir_lock.release()
            raise
        self._writer: Optional[Writer] = None
        self._entry: Optional[Dict[str, Any]] = None
        self._connections: Dict[str, Any] = {}
        self._counts: Dict[str, int] = {}
        self._first_ns: Optional[int] = None
        self._last_ns = 0
        self._last_flush = 0.0

    def _open_index(self, robot: str, joint_names: list, task: str, rates: dict,
                    roles: dict) -> Dict[str, Any]:
        index = idx.read_index(self.output_dir)
        if index is None:
            index = {'format_version': idx.FORMAT_VERSION, 'robot': robot, 'task': task,
                     'joint_names': joint_names, 'topics': roles,
                     'topic_types': dict(self.topics), 'rates': rates, 'episodes': []}
            if self._gripper:
                index['gripper'] = self._gripper
            idx.write_index(self.output_dir, index)
            return index
        for key, value in (('robot', robot), ('task', task), ('joint_names', joint_names)):
            if index.get(key) not in (None, value):
                raise ValueError(f'{self.output_dir} holds a dataset with {key}={index[key]!r}, '
                                 f'not {value!r}; use another output_dir for a different '
                                 f'{key}')
            index[key] = value
        # Later sessions may record more topics; the index lists the union.
        index['topic_types'] = {**(index.get('topic_types') or {}), **self.topics}
        index['topics'] = {**roles, **(index.get('topics') or {})}
        index['rates'] = {**(index.get('rates') or {}), **rates}
        index.setdefault('format_version', idx.FORMAT_VERSION)
        return index

    @property
    def recording(self) -> bool:
        """Return whether an episode is open."""
        return self._writer is not None

    @property
    def episode_name(self) -> Optional[str]:
        """Name of the open episode, or None."""
        return None if self._entry is None else self._entry['name']

    @property
    def episodes(self) -> list:
        """Return copies of the episode entries of ``dataset.yaml``."""
        return [dict(e) for e in self._index['episodes']]

    @property
    def message_counts(self) -> Dict[str, int]:
        """Messages written per topic in the open episode."""
        return dict(self._counts)

    def heard(self, topic: str) -> None:
        """Note that ``topic`` delivered a message now (recording or not)."""
        self.watch.heard(topic)

    def silent_required(self) -> list:
        """Return the required topics not heard recently, each with its age."""
        return self.watch.silent(self.required_topics, self.required_max_age_s)

    def start_episode(self) -> str:
        """
        Open a new bag and return the episode name.

        RuntimeError when one is open; :class:`NotReady` while a required topic is silent.
        """
        silent = self.silent_required()
        if silent:
            raise NotReady(f'not starting: required topics are silent: {", ".join(silent)}; '
                           'start the robot (or sim) that publishes them, or wait and call '
                           'start_episode again')
        with self._lock:
            if self._writer is not None:
                raise RuntimeError(f'episode {self.episode_name} is being recorded; stop or '
                                   'discard it before starting another')
            if self._dir_lock is None:
                raise RuntimeError('the recorder is closed; create a new DatasetRecorder')
            name = idx.episode_name(idx.next_episode_index(self.output_dir, self._index))
            entry = {'name': name, 'status': idx.RECORDING, 'success': None,
                     'duration_s': 0.0, 'message_counts': dict.fromkeys(self.topics, 0),
                     'start_time_ns': None}
            self._index['episodes'].append(entry)
            writer = Writer(self.output_dir / name, version=9, storage_plugin=StoragePlugin.MCAP)
            try:
                idx.write_index(self.output_dir, self._index)
                writer.open()
                connections = {t: writer.add_connection(t, m, typestore=messages.TYPESTORE)
                               for t, m in self.topics.items()}
                self._writer = writer
                # The MCAP header and channels reach the file now, so a crash at any later
                # moment leaves a bag that recovery can rebuild (if only an empty one).
                self._flush()
                self._writer = None
            except (OSError, WriterError) as exc:
                self._writer = None
                self._index['episodes'].remove(entry)
                if writer.storage is not None:
                    writer.abort()
                raise RecordingError(f'cannot start {name} in {self.output_dir}: {exc}; check '
                                     'free disk space and write permission') from exc
            self._writer, self._entry, self._connections = writer, entry, connections
            self._counts = dict.fromkeys(self.topics, 0)
            command_type = self.topics.get(self._action_topic) if self._action_topic else None
            self._checks = EpisodeChecks(self._action_topic, command_type, self._joint_names)
            self._first_ns, self._last_ns = None, 0
            self._last_flush = time.monotonic()
            return name

    def set_scene(self, scene: Mapping[str, Any]) -> None:
        """Store what restores the open episode's scene in sim (seed, initial poses)."""
        with self._lock:
            if self._entry is None:
                raise RuntimeError('no episode is being recorded; no scene to set')
            self._entry['scene'] = dict(scene)

    def write(self, topic: str, timestamp_ns: int, data: Any) -> Optional[str]:
        """
        Append one message (CDR bytes or a rosbags message) logged at ``timestamp_ns``.

        Returns what is wrong with it when it is an invalid command (it is recorded all the
        same, and the episode is flagged when it stops), else None.
        """
        if self._writer is None:
            raise RuntimeError('no episode is being recorded; call start_episode() first')
        connection = self._connections.get(topic)
        if connection is None:
            raise ValueError(f'topic {topic!r} is not recorded; expected one of '
                             f'{sorted(self.topics)}')
        if isinstance(data, (bytes, bytearray, memoryview)):
            raw = messages.normalize_cdr(data, self.topics[topic]) if self.normalize_cdr \
                else data
        else:
            raw = messages.serialize(data, self.topics[topic])
        problem = self._checks.check(topic, raw)
        timestamp_ns = int(timestamp_ns)
        with self._lock:
            if self._writer is None:
                raise RuntimeError('the episode was stopped while a message was being written')
            try:
                self._writer.write(connection, timestamp_ns, raw)
                now = time.monotonic()
                if now - self._last_flush >= self.flush_interval_s:
                    self._flush()
                    self._last_flush = now
            except (OSError, WriterError) as exc:
                self._fail(exc)
            self._counts[topic] += 1
            # Topics may be written out of time order (log times are header stamps).
            if self._first_ns is None or timestamp_ns < self._first_ns:
                self._first_ns = timestamp_ns
            self._last_ns = max(self._last_ns, timestamp_ns)
        return problem

    def flush(self) -> None:
        """Push buffered data of the open episode to the file now (e.g. when input pauses)."""
        with self._lock:
            if self._writer is None:
                return
            try:
                self._flush()
                self._last_flush = time.monotonic()
            except (OSError, WriterError) as exc:
                self._fail(exc)

    def _flush(self) -> None:
        """Push the pending MCAP chunk into the OS, where it survives a killed process."""
        storage = self._writer.storage
        chunk = getattr(storage, 'chunk', None)
        if chunk is not None and chunk.bio.tell():
            storage.close_chunk()
        bio = getattr(storage, 'bio', None)
        if bio is not None:
            bio.flush()

    def _fail(self, exc: BaseException) -> None:
        """Stop the open episode after a write error and raise RecordingError."""
        writer, entry = self._writer, self._entry
        self._writer, self._entry = None, None
        try:
            writer.abort()
        except Exception:  # the file is already unusable; the index update below matters
            pass
        self._finish_entry(entry, idx.INTERRUPTED, None, error=str(exc))
        try:
            idx.write_index(self.output_dir, self._index)
        except OSError:
            pass  # the entry stays 'recording' on disk; recovery marks it interrupted
        raise RecordingError(f'{entry["name"]}: writing to {self.output_dir} failed ({exc}); '
                             'the episode was stopped and marked interrupted, earlier episodes '
                             'are intact; free disk space or fix permissions, then start a '
                             'new episode') from exc

    def _finish_entry(self, entry: Dict[str, Any], status: str, success: Optional[bool],
                      error: Optional[str] = None) -> None:
        entry['status'] = status
        entry['success'] = None if success is None else bool(success)
        entry['message_counts'] = dict(self._counts)
        entry['start_time_ns'] = self._first_ns
        span = 0 if self._first_ns is None else self._last_ns - self._first_ns
        entry['duration_s'] = round(span / 1e9, 6)
        if error:
            entry['error'] = error
        if status != idx.DISCARDED:
            commands = self._counts.get(self._action_topic, 0) if self._action_topic else 0
            notes = self._checks.notes(commands, self._counts, self.required_topics)
            if notes:
                entry['warnings'] = notes

    def stop_episode(self, success: Optional[bool] = None,
                     status: str = idx.COMPLETE) -> Dict[str, Any]:
        """Close the open bag durably, record the outcome and return its index entry."""
        if status not in (idx.COMPLETE, idx.INTERRUPTED):
            raise ValueError(f'status must be {idx.COMPLETE!r} or {idx.INTERRUPTED!r}, got '
                             f'{status!r}')
        with self._lock:
            if self._writer is None:
                raise RuntimeError('no episode is being recorded; nothing to stop')
            writer, entry = self._writer, self._entry
            # The bag carries its own outcome so recovery can finish the index after a crash
            # between closing the bag and writing dataset.yaml.
            writer.set_custom_data('lam_ros.status', status)
            writer.set_custom_data('lam_ros.success', 'null' if success is None
                                   else str(bool(success)).lower())
            try:
                writer.close()
                bag_dir = self.output_dir / entry['name']
                idx.fsync_file(bag_mcap_path(bag_dir))
                idx.fsync_file(bag_dir / 'metadata.yaml')
                fsync_dir(bag_dir)
            except (OSError, WriterError) as exc:
                self._writer = writer
                self._fail(exc)
            self._writer, self._entry = None, None
            self._finish_entry(entry, status, success)
            idx.write_index(self.output_dir, self._index)
            return dict(entry)

    def discard_episode(self) -> Dict[str, Any]:
        """Drop the open episode's bag; its entry stays, marked ``discarded``."""
        with self._lock:
            if self._writer is None:
                raise RuntimeError('no episode is being recorded; nothing to discard')
            writer, entry = self._writer, self._entry
            self._writer, self._entry = None, None
            try:
                writer.abort()
            except Exception:  # the bag is deleted next; a close error does not matter
                pass
            self._finish_entry(entry, idx.DISCARDED, None)
            idx.write_index(self.output_dir, self._index)
            shutil.rmtree(self.output_dir / entry['name'], ignore_errors=True)
            return dict(entry)

    def close(self) -> Optional[Dict[str, Any]]:
        """
        Save an open episode as ``interrupted`` and release the directory.

        Returns the entry of the episode that was open, if any.
        """
        entry = None
        if self._writer is not None:
            entry = self.stop_episode(None, status=idx.INTERRUPTED)
        if self._dir_lock is not None:
            self._dir_lock.release()
            self._dir_lock = None
        return entry

    def __enter__(self) -> 'DatasetRecorder':
        """Return self."""
        return self

    def __exit__(self, *exc_info: Any) -> None:
        """Close, saving an open episode as interrupted."""
        self.close()


def _gripper_model(robot: str) -> Dict[str, Any]:
    """Return the gripper model (kind, joint, open, closed, ...) of ``robot``, {} if unknown."""
    from lam_ros.description import load_robot
    try:
        return load_robot(robot).gripper.to_dict()
    except (FileNotFoundError, ValueError):
        return {}
