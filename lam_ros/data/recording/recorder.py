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

Around it: ``index`` (dataset.yaml, roles), ``recover`` (crash recovery), ``checks``
(required topics, invalid-command flags), ``timing`` (the log time of each message).
"""

from pathlib import Path
import shutil
import threading
import time
from typing import Any, Dict, Mapping, Optional, Sequence, Union

from lam_ros.data import messages
from lam_ros.data.recording import index as idx
from lam_ros.data.recording.checks import (
    check_topics, EpisodeChecks, NotReady, RequiredTopics)
from lam_ros.data.recording.index import infer_roles
from lam_ros.data.recording.recover import recover_dataset, recover_locked, RecoveryReport
from lam_ros.data.recording.repair import bag_mcap_path
from lam_ros.description.files import fsync_dir
from rosbags.rosbag2 import StoragePlugin, Writer, WriterError

PathLike = Union[str, Path]

__all__ = ['DatasetRecorder', 'NotReady', 'RecordingError', 'RecoveryReport',
           'recover_dataset', 'infer_roles']


class RecordingError(RuntimeError):
    """Writing an episode failed (disk full, permissions); the episode has been stopped."""


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
        check_topics(topics, action_topic, required_topics)
        if flush_interval_s <= 0:
            raise ValueError(f'flush_interval_s must be > 0 seconds, got {flush_interval_s}')
        self.output_dir = Path(output_dir).expanduser()
        self.topics = {str(k): str(v) for k, v in topics.items()}
        self.flush_interval_s = float(flush_interval_s)
        self.normalize_cdr = bool(normalize_cdr)
        self._gripper = dict(gripper) if gripper is not None else _gripper_model(robot)
        self.required = RequiredTopics(required_topics, required_max_age_s)
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
            self._index = idx.open_index(
                self.output_dir, robot, list(joint_names), task, dict(rates),
                dict(roles or infer_roles(self.topics, action_topic)), self.topics, self._gripper)
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

    @property
    def required_topics(self) -> list:
        """Topics that must be heard before an episode starts."""
        return list(self.required.topics)

    @property
    def required_max_age_s(self) -> float:
        """How recently (s) each required topic must have been heard to start."""
        return self.required.max_age_s

    def heard(self, topic: str) -> None:
        """Note that ``topic`` delivered a message now (recording or not)."""
        self.required.heard(topic)

    def silent_required(self) -> list:
        """Return the required topics not heard recently, each with its age."""
        return self.required.silent()

    def start_episode(self) -> str:
        """
        Open a new bag and return the episode name.

        RuntimeError when one is open; :class:`NotReady` while a required topic is silent.
        """
        self.required.check_ready()
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
            notes = self._checks.notes(commands, self._counts, self.required.topics)
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
