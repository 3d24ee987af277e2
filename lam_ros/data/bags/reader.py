"""
Read demonstration episodes from rosbag2 bags into per-topic time series (no ROS runtime).

Sources and mappings are described in :mod:`lam_ros.data.bags.source`; its names are
re-exported here.
"""

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from lam_ros.data import messages
from lam_ros.data.bags.frames import (
    BaseFrame, FrameError, static_edges, TF_MESSAGE, TF_STATIC_TOPIC)
from lam_ros.data.bags.source import (
    EpisodeEntry, find_episodes, is_bag, mapping_for_source, read_dataset_yaml, storage_files,
    TopicMapping)
from lam_ros.data.images import decode_frame
from lam_ros.description import image_kind
import numpy as np
from rosbags.highlevel import AnyReader, AnyReaderError
from rosbags.rosbag2 import ReaderError

__all__ = ['COMMAND_TYPES', 'EpisodeEntry', 'EpisodeError',
           'find_episodes', 'mapping_for_source', 'POSE_TYPES', 'RawEpisode', 'read_commands',
           'read_dataset_yaml', 'read_episode', 'Stream', 'TopicMapping']

POSE_TYPES = ('geometry_msgs/msg/PoseStamped', 'geometry_msgs/msg/Pose')
COMMAND_TYPES = (messages.FLOAT64_ARRAY, messages.JOINT_TRAJECTORY)


FRAME_OPTION = 'frame_transforms in the --mapping YAML'


class EpisodeError(Exception):
    """An episode cannot be used; the message is the reason shown in the exclusion report."""

    def __init__(self, reason: str, kind: str = 'invalid data', option: str = '') -> None:
        """Give the reason, the class of reason and the option that controls it, if any."""
        super().__init__(' '.join(str(reason).split()))
        self.kind = kind
        """Short class of the reason ('too short', 'failed outcome', ...) for reports."""
        self.option = option
        """The option that decides this exclusion ('' when the data itself must change)."""


@dataclass
class Stream:
    """The messages of one topic in one episode, as arrays."""

    times_ns: np.ndarray
    """Receive times (bag log times) in integer nanoseconds, ascending, shape (N,)."""

    values: np.ndarray
    """One row per message, shape (N, ...); empty for image topics (frames load lazily)."""


@dataclass
class RawEpisode:
    """An episode's topics read from its bag, before resampling."""

    entry: EpisodeEntry
    """Where the episode came from."""

    streams: Dict[str, Stream]
    """``joint_pos``, ``joint_vel`` (absent when the bag has no velocities), ``action``,
    ``gripper_width`` (when the gripper joints are there) and every optional observation key
    present in the bag."""

    success: Optional[bool]
    """Outcome: ``dataset.yaml`` first, else the last value on the success topic."""

    load_frames: Callable[[str, np.ndarray], np.ndarray]
    """``(key, message indices) -> frames``: decodes only the image frames that are used."""


def _rename(names: Sequence[str], mapping: TopicMapping) -> List[str]:
    return [mapping.joint_rename.get(n, n) for n in names]


class _JointSelector:
    """Selects the mapping's joints by name from messages whose name lists may vary."""

    def __init__(self, wanted: Sequence[str], mapping: TopicMapping, what: str,
                 allow_extra: bool) -> None:
        self._wanted = list(wanted)
        self._mapping = mapping
        self._what = what
        self._allow_extra = allow_extra
        self._cache: Dict[Tuple[str, ...], np.ndarray] = {}

    def indices(self, names: Sequence[str]) -> np.ndarray:
        key = tuple(names)
        if key not in self._cache:
            renamed = _rename(names, self._mapping)
            missing = [n for n in self._wanted if n not in renamed]
            if missing:
                raise EpisodeError(f'{self._what} lacks joints {missing} (has {renamed}); '
                                   'fix joint_names or joint_rename in the mapping')
            extra = sorted(set(renamed) - set(self._wanted))
            if extra and not self._allow_extra:
                raise EpisodeError(f'{self._what} names unknown joints {extra}; expected only '
                                   f'{self._wanted} (add joint_rename entries)')
            self._cache[key] = np.array([renamed.index(n) for n in self._wanted])
        return self._cache[key]


def _command_row(msg: Any, msgtype: str, mapping: TopicMapping,
                 selector: _JointSelector) -> np.ndarray:
    """Return one command as a vector in ``joint_names`` order."""
    if msgtype == messages.FLOAT64_ARRAY:
        order = mapping.command_order()
        data = np.asarray(msg.data, dtype=np.float64)
        if data.shape != (len(order),):
            raise EpisodeError(f'command has {data.size} values, expected {len(order)} for '
                               f'joints {order}')
        row = np.empty(len(mapping.joint_names))
        row[[mapping.joint_names.index(n) for n in order]] = data
        return row
    if not msg.points:
        raise EpisodeError('JointTrajectory command without points')
    positions = np.asarray(msg.points[0].positions, dtype=np.float64)
    if positions.shape != (len(msg.joint_names),):
        raise EpisodeError(f'JointTrajectory point has {positions.size} positions for '
                           f'{len(msg.joint_names)} joint names')
    return positions[selector.indices(msg.joint_names)]


def _open_reader(path: Path) -> AnyReader:
    return AnyReader([path], default_typestore=messages.TYPESTORE)


def _deserialize(reader: AnyReader, raw: bytes, msgtype: str) -> Any:
    """Decode one message, accepting the trailing padding Fast DDS leaves in real recordings."""
    try:
        if msgtype in messages.TYPESTORE.types:
            return messages.deserialize(raw, msgtype)
        return reader.deserialize(raw, msgtype)
    except Exception as exc:  # rosbags raises several types for corrupt bytes
        raise EpisodeError(f'cannot decode a {msgtype} message: {exc}') from exc


def read_episode(entry: EpisodeEntry, mapping: TopicMapping,
                 statuses: Sequence[str] = ('complete',)) -> RawEpisode:
    """
    Read an episode's topics; raise :class:`EpisodeError` with the reason it is unusable.

    Only episodes whose ``dataset.yaml`` status is in ``statuses`` are read.
    """
    if entry.problem:
        raise EpisodeError(entry.problem, 'unreadable')
    if entry.status not in statuses:
        option = '--include-interrupted' if entry.status == 'interrupted' else ''
        raise EpisodeError(f'status is {entry.status!r} in dataset.yaml (using '
                           f'{", ".join(statuses)})', f'{entry.status} episode', option)
    if not is_bag(entry.path):
        raise EpisodeError(f'{entry.path}: no rosbag2 bag (no metadata.yaml)', 'unreadable')
    obs_topics = mapping.observation_topics()
    state_sel = _JointSelector(mapping.joint_names, mapping, 'joint state', allow_extra=True)
    cmd_sel = _JointSelector(mapping.joint_names, mapping, 'JointTrajectory command',
                             allow_extra=False)
    rows: Dict[str, List[Any]] = {}
    times: Dict[str, List[int]] = {}
    success_values: List[bool] = []
    pose_frames: Dict[str, set] = {}
    tf_static: List[Any] = []
    try:
        reader = _open_reader(entry.path)
        reader.open()
    except Exception as exc:  # rosbags raises several unrelated types for unreadable bags
        raise EpisodeError(f'{entry.path / "metadata.yaml"}: cannot open the bag: {exc}',
                           'unreadable') from exc
    try:
        by_topic = {c.topic: c for c in reader.connections}
        for topic in (mapping.joint_state_topic, mapping.command_topic):
            if topic not in by_topic:
                raise EpisodeError(f'required topic {topic} is not in the bag (has '
                                   f'{sorted(by_topic)})')
        if by_topic[mapping.command_topic].msgtype not in COMMAND_TYPES:
            raise EpisodeError(f'{mapping.command_topic} is '
                               f'{by_topic[mapping.command_topic].msgtype}; expected one of '
                               f'{COMMAND_TYPES}')
        key_of = {mapping.joint_state_topic: 'joint_state', mapping.command_topic: 'action'}
        for key, topic in obs_topics.items():
            if topic in by_topic:
                key_of[topic] = key
        if mapping.success_topic in by_topic:
            key_of[mapping.success_topic] = 'success'
        if by_topic.get(TF_STATIC_TOPIC) is not None \
                and by_topic[TF_STATIC_TOPIC].msgtype == TF_MESSAGE:
            key_of[TF_STATIC_TOPIC] = 'tf_static'
        wanted = [c for c in reader.connections if c.topic in key_of]
        for conn, stamp_ns, raw in reader.messages(connections=wanted):
            key = key_of[conn.topic]
            if image_kind(key):
                times.setdefault(key, []).append(stamp_ns)
                continue
            msg = _deserialize(reader, raw, conn.msgtype)
            if key == 'success':
                success_values.append(bool(msg.data))
                continue
            if key == 'tf_static':
                tf_static.append(msg)
                continue
            if key == 'joint_state':
                idx = state_sel.indices(msg.name)
                pos = np.asarray(msg.position, dtype=np.float64)
                vel = np.asarray(msg.velocity, dtype=np.float64)
                if pos.size != len(msg.name):
                    raise EpisodeError(f'joint state has {pos.size} positions for '
                                       f'{len(msg.name)} names')
                has_vel = vel.size == len(msg.name)
                renamed = _rename(msg.name, mapping)
                grip = None
                if mapping.gripper_joints and set(mapping.gripper_joints) <= set(renamed):
                    grip = sum(pos[renamed.index(n)] for n in mapping.gripper_joints)
                row = (pos[idx], vel[idx] if has_vel else None, grip)
            elif key == 'action':
                row = _command_row(msg, conn.msgtype, mapping, cmd_sel)
            else:
                if conn.msgtype not in POSE_TYPES:
                    raise EpisodeError(f'{conn.topic} is {conn.msgtype}; expected one of '
                                       f'{POSE_TYPES}')
                row = messages.pose7_from_msg(msg)
                if hasattr(msg, 'header'):  # a bare Pose has no frame: taken as the base
                    pose_frames.setdefault(key, set()).add(msg.header.frame_id)
            rows.setdefault(key, []).append(row)
            times.setdefault(key, []).append(stamp_ns)
    except (AnyReaderError, ReaderError) as exc:
        files = storage_files(entry.path)
        where = entry.path / files[0].name if len(files) == 1 else \
            f'{entry.path} ({", ".join(p.name for p in files)})'
        raise EpisodeError(f'{where}: cannot read the bag (truncated or corrupt?): {exc}',
                           'unreadable') from exc
    finally:
        reader.close()
    streams = _to_streams(rows, times)
    _to_base_frame(streams, pose_frames, obs_topics, mapping, tf_static)
    success = entry.success
    if success is None and success_values:
        success = success_values[-1]
    image_topics = {k: t for k, t in obs_topics.items() if image_kind(k)}
    return RawEpisode(entry, streams, success,
                      lambda key, idx: _load_frames(entry.path, image_topics[key], key, idx))


def _to_base_frame(streams: Dict[str, Stream], pose_frames: Dict[str, set],
                   topics: Dict[str, str], mapping: TopicMapping, tf_static: List[Any]) -> None:
    """Express every pose stream in the base frame (in place), or raise with the fix."""
    try:
        base = BaseFrame(mapping.base_frame, mapping.frame_transforms, static_edges(tf_static))
        for key, frames in pose_frames.items():
            if len(frames) > 1:
                raise FrameError(f'{topics[key]} changes frame within the episode '
                                 f'({sorted(frames)}); one pose topic has one frame')
            stream = streams[key]
            stream.values = base.to_base(next(iter(frames)), topics[key], stream.values)
    except ValueError as exc:
        raise EpisodeError(str(exc), 'pose frame', FRAME_OPTION) from exc


def _to_streams(rows: Dict[str, List[Any]], times: Dict[str, List[int]]) -> Dict[str, Stream]:
    streams: Dict[str, Stream] = {}
    for key, t_list in times.items():
        t = np.asarray(t_list, dtype=np.int64)
        if key == 'joint_state':
            pos = np.stack([r[0] for r in rows[key]])
            streams['joint_pos'] = Stream(t, pos)
            if all(r[1] is not None for r in rows[key]):
                streams['joint_vel'] = Stream(t, np.stack([r[1] for r in rows[key]]))
            if all(r[2] is not None for r in rows[key]):
                streams['gripper_width'] = Stream(t, np.array([[r[2]] for r in rows[key]]))
        elif key in rows:
            streams[key] = Stream(t, np.stack(rows[key]))
        else:
            streams[key] = Stream(t, np.zeros((t.size, 0)))
    return streams


def _frame(msg: Any, key: str) -> np.ndarray:
    # Depth cameras mark pixels without a return as NaN/Inf; decode_frame makes them 0.
    try:
        return decode_frame(messages.image_to_array(msg), msg.encoding, image_kind(key))
    except ValueError as exc:
        raise EpisodeError(str(exc)) from exc


def _load_frames(path: Path, topic: str, key: str, indices: np.ndarray) -> np.ndarray:
    """Decode the frames with the given message indices of one image topic, in that order."""
    needed = {int(i) for i in np.unique(indices)}
    frames: Dict[int, np.ndarray] = {}
    with _open_reader(path) as reader:
        conns = [c for c in reader.connections if c.topic == topic]
        for i, (conn, _, raw) in enumerate(reader.messages(connections=conns)):
            if i in needed:
                frames[i] = _frame(_deserialize(reader, raw, conn.msgtype), key)
    shapes = {f.shape for f in frames.values()}
    if len(shapes) > 1:
        raise EpisodeError(f'{topic} changes image size within the episode: {sorted(shapes)}')
    return np.stack([frames[int(i)] for i in indices])


def read_commands(entry: EpisodeEntry, mapping: TopicMapping) -> Tuple[np.ndarray, np.ndarray]:
    """Return ``(times_ns, commands)`` of an episode: every command in ``joint_names`` order."""
    # Only the joints and commands: a replay must not depend on the poses' frames or images.
    commands_only = replace(mapping, object_pose_topic=None, goal_pose_topic=None,
                            ee_pose_topic=None, cameras={})
    raw = read_episode(entry, commands_only, statuses=(entry.status,))
    if 'action' not in raw.streams:
        raise EpisodeError(f'no messages on {mapping.command_topic}')
    stream = raw.streams['action']
    return stream.times_ns, stream.values
