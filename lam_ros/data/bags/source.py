"""
Where a source's episodes are, and how its topics and joints map onto the policy's signals.

A source is either a recorder output directory (``dataset.yaml`` plus one bag per episode),
a folder of bags made by plain ``ros2 bag record``, or a single bag. A :class:`TopicMapping`
says which topic carries what and how the bag's joints map onto the policy's joints.
"""

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from lam_ros.data.bags.frames import as_transform
from lam_ros.description import image_key, load_robot, RobotDescription
from lam_ros.description.camera import check_camera_name, IMAGE_KINDS
import yaml

PathLike = Union[str, Path]


def _robot() -> RobotDescription:
    return load_robot()


def robot_cameras(robot: RobotDescription) -> Dict[str, Dict[str, Optional[str]]]:
    """Return camera name -> {'rgb': topic, 'depth': topic} of a robot description."""
    return {name: {'rgb': robot.topics.camera_topic(name, 'image'),
                   'depth': robot.topics.camera_topic(name, 'depth')}
            for name in robot.topics.cameras}


@dataclass
class TopicMapping:
    """
    Which bag topic carries which signal, and how bag joints map onto policy joints.

    Joint names in the bag are first renamed through ``joint_rename``; every other joint
    name in the mapping is a name after renaming.
    """

    joint_names: List[str] = field(default_factory=lambda: list(_robot().joint_names))
    """Policy joints in action / observation order; each must be in the joint states."""

    joint_state_topic: str = field(default_factory=lambda: _robot().topics.joint_state)
    """``sensor_msgs/JointState`` topic; extra joints in it are ignored, missing ones are not."""

    command_topic: str = field(default_factory=lambda: _robot().topics.command)
    """``std_msgs/Float64MultiArray`` or ``trajectory_msgs/JointTrajectory`` command topic."""

    command_joint_names: Optional[List[str]] = None
    """Joint order of a Float64MultiArray command (default ``joint_names``); JointTrajectory
    commands name their joints themselves and use the first point."""

    joint_rename: Dict[str, str] = field(default_factory=dict)
    """Bag joint name -> policy joint name, applied to joint states and trajectory commands."""

    object_pose_topic: Optional[str] = field(default_factory=lambda: _robot().topics.object_pose)
    """``geometry_msgs/PoseStamped`` of the object -> ``object_pose``; used when in the bags."""

    goal_pose_topic: Optional[str] = field(default_factory=lambda: _robot().topics.goal_pose)
    """``geometry_msgs/PoseStamped`` of the goal -> ``goal_pose``; used when in the bags."""

    ee_pose_topic: Optional[str] = None
    """``geometry_msgs/PoseStamped`` of the end effector -> ``ee_pose`` (or pass an FK)."""

    cameras: Dict[str, Dict[str, Optional[str]]] = field(
        default_factory=lambda: robot_cameras(_robot()))
    """Camera name -> ``{rgb: topic, depth: topic}`` (``sensor_msgs/Image``; null or absent:
    none): colour (rgb8/bgr8/rgba8/bgra8/mono8) -> ``<name>_rgb`` (H, W, 3) uint8, depth
    (32FC1 m or 16UC1 mm) -> ``<name>_depth`` (H, W, 1) m, pixels without a return (NaN/Inf)
    as 0; used when in the bags. Default: the robot description's cameras."""

    success_topic: Optional[str] = field(default_factory=lambda: _robot().topics.success)
    """``std_msgs/Bool``; its last value is the outcome unless ``dataset.yaml`` gives one."""

    gripper_joints: List[str] = field(
        default_factory=lambda: list(_robot().gripper.width_joints))
    """Joints whose positions (m) sum to ``gripper_width``, as in the sim; the observation
    exists when all of them are in the joint states. Empty for no gripper observation."""

    base_frame: str = field(default_factory=lambda: _robot().frames.base)
    """The robot base frame every pose is expressed in (default: the robot description's)."""

    frame_transforms: Dict[str, List[float]] = field(default_factory=dict)
    """Frame id -> its pose in ``base_frame``, ``[x, y, z, qw, qx, qy, qz]`` (m, w-first), for
    poses stamped in another frame; without one the bag's ``/tf_static`` is used, and a frame
    neither connects to the base is refused."""

    def __post_init__(self) -> None:
        """Check the mapping as soon as it is made, so a bad YAML fails before any bag is read."""
        if not self.joint_names or len(set(self.joint_names)) != len(self.joint_names):
            raise ValueError(f'joint_names must be a non-empty list of distinct names, got '
                             f'{self.joint_names!r}')
        self.joint_names = [str(n) for n in self.joint_names]
        if self.command_joint_names is not None:
            names = [str(n) for n in self.command_joint_names]
            if sorted(names) != sorted(self.joint_names):
                raise ValueError(
                    f'command_joint_names {names!r} must list each of joint_names '
                    f'{self.joint_names!r} exactly once, in the order of the command vector')
            self.command_joint_names = names
        if not isinstance(self.joint_rename, dict):
            raise ValueError(f'joint_rename must map bag names to policy names, got '
                             f'{self.joint_rename!r}')
        if not self.joint_state_topic or not self.command_topic:
            raise ValueError('joint_state_topic and command_topic are required topic names')
        self.gripper_joints = [str(n) for n in (self.gripper_joints or [])]
        self.cameras = _check_cameras(self.cameras)
        if not self.base_frame or not isinstance(self.base_frame, str):
            raise ValueError(f'base_frame must be a frame id, got {self.base_frame!r}')
        if not isinstance(self.frame_transforms, dict):
            raise ValueError(f'frame_transforms must map frame ids to [x, y, z, qw, qx, qy, qz],'
                             f' got {self.frame_transforms!r}')
        self.frame_transforms = {
            str(k): [float(v) for v in as_transform(value, f'frame_transforms[{k!r}]')]
            for k, value in self.frame_transforms.items()}

    @classmethod
    def for_robot(cls, robot: Optional[str] = None, **overrides: Any) -> 'TopicMapping':
        """Return the mapping of a robot description's joints and topics, then ``overrides``."""
        desc = load_robot(robot)
        t = desc.topics
        values: Dict[str, Any] = {
            'joint_names': list(desc.joint_names), 'joint_state_topic': t.joint_state,
            'command_topic': t.command, 'object_pose_topic': t.object_pose,
            'goal_pose_topic': t.goal_pose, 'cameras': robot_cameras(desc),
            'success_topic': t.success, 'gripper_joints': list(desc.gripper.width_joints),
            'base_frame': desc.frames.base}
        values.update(overrides)
        return cls.from_dict(values)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> 'TopicMapping':
        """Make a mapping from a dict (a YAML file's content), rejecting unknown keys."""
        if not isinstance(data, dict):
            raise ValueError(f'a topic mapping must be a mapping of field: value, got '
                             f'{type(data).__name__}')
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f'unknown topic mapping keys {unknown}; expected some of '
                             f'{sorted(known)}')
        return cls(**data)

    @classmethod
    def from_yaml(cls, path: PathLike) -> 'TopicMapping':
        """Load a mapping from a YAML file (see ``config/dataset_mapping.example.yaml``)."""
        with open(path, encoding='utf-8') as stream:
            data = yaml.safe_load(stream) or {}
        try:
            return cls.from_dict(data)
        except (TypeError, ValueError) as exc:
            raise ValueError(f'{path}: {exc}') from exc

    def to_dict(self) -> Dict[str, Any]:
        """Return the mapping as plain data (for YAML, JSON and fingerprints)."""
        return asdict(self)

    def command_order(self) -> List[str]:
        """Return the joint order of Float64MultiArray commands."""
        return list(self.command_joint_names or self.joint_names)

    def observation_topics(self) -> Dict[str, str]:
        """Return observation key -> topic for the optional observation topics that are set."""
        pairs = (('object_pose', self.object_pose_topic), ('goal_pose', self.goal_pose_topic),
                 ('ee_pose', self.ee_pose_topic))
        out = {key: topic for key, topic in pairs if topic}
        for name, topics in sorted(self.cameras.items()):
            for kind, topic in sorted(topics.items()):
                if topic:
                    out[image_key(name, kind)] = topic
        return out


@dataclass
class EpisodeEntry:
    """One episode found in a source: its bag and what ``dataset.yaml`` says about it."""

    name: str
    """Episode name (the bag directory's name)."""

    path: Path
    """The bag directory."""

    status: str = 'complete'
    """``complete``, ``discarded`` or ``interrupted`` (plain bags count as complete)."""

    success: Optional[bool] = None
    """Outcome from ``dataset.yaml``; None when not recorded there."""

    problem: str = ''
    """Why the episode cannot be read, found before opening it ('' when none is known)."""


STORAGE_SUFFIXES = ('.mcap', '.db3', '.mcap.zstd', '.db3.zstd', '.bag')
"""Files that hold a bag's messages (rosbag2 MCAP / sqlite3, compressed or not; ROS 1)."""


def is_bag(path: Path) -> bool:
    """Return whether ``path`` is a rosbag2 directory."""
    return path.is_dir() and (path / 'metadata.yaml').is_file()


def storage_files(path: Path) -> List[Path]:
    """Return the message files directly inside ``path`` (none for a non-directory)."""
    if not path.is_dir():
        return []
    return sorted(p for p in path.iterdir()
                  if p.is_file() and p.name.endswith(STORAGE_SUFFIXES))


def unreadable_reason(path: Path) -> str:
    """Return why a directory with message files but no ``metadata.yaml`` cannot be read."""
    files = storage_files(path)
    names = ', '.join(p.name for p in files[:3]) + (' ...' if len(files) > 3 else '')
    if any(p.suffix == '.bag' for p in files):
        return (f'{path}/{files[0].name}: a ROS 1 bag; convert it with `rosbags-convert` '
                'into a rosbag2 bag first')
    return (f'{path}: {names} but no metadata.yaml (the recording was not closed cleanly); '
            f'`ros2 bag reindex {path}` writes it')


def read_dataset_yaml(source: PathLike) -> Optional[Dict[str, Any]]:
    """Return the content of ``source/dataset.yaml``, or None when there is none."""
    path = Path(source) / 'dataset.yaml'
    if not path.is_file():
        return None
    with open(path, encoding='utf-8') as stream:
        data = yaml.safe_load(stream) or {}
    if not isinstance(data, dict):
        raise ValueError(f'{path}: expected a mapping with an "episodes" list')
    return data


def find_episodes(source: PathLike) -> List[EpisodeEntry]:
    """List the episodes of a recorder directory, a folder of bags, or a single bag."""
    root = Path(source)
    if not root.exists():
        raise ValueError(f'dataset source {root} does not exist; expected a recorder output '
                         'directory, a folder of rosbag2 bags or one bag')
    if is_bag(root):
        return [EpisodeEntry(root.name, root)]
    meta = read_dataset_yaml(root)
    if meta is not None:
        entries = []
        for item in meta.get('episodes') or []:
            if not isinstance(item, dict) or 'name' not in item:
                raise ValueError(f'{root / "dataset.yaml"}: every episode needs a "name", got '
                                 f'{item!r}')
            success = item.get('success')
            entries.append(EpisodeEntry(
                str(item['name']), root / str(item['name']), str(item.get('status', 'complete')),
                None if success is None else bool(success)))
        return entries
    bags = sorted(p for p in root.iterdir() if is_bag(p) or storage_files(p))
    if not bags and storage_files(root):  # one bag whose metadata.yaml is missing
        return [EpisodeEntry(root.name, root, problem=unreadable_reason(root))]
    if not bags:
        raise ValueError(f'{root} holds no rosbag2 bags (directories with metadata.yaml) and no '
                         'dataset.yaml')
    return [EpisodeEntry(p.name, p, problem='' if is_bag(p) else unreadable_reason(p))
            for p in bags]


def recorded_robot(source: PathLike) -> str:
    """Return the robot name ``dataset.yaml`` recorded, or '' (plain bags)."""
    meta = read_dataset_yaml(source) if Path(source).is_dir() else None
    name = (meta or {}).get('robot')
    return name if isinstance(name, str) else ''


def _recorded_robot(meta: Dict[str, Any]) -> Optional[RobotDescription]:
    """Return the description of the robot ``dataset.yaml`` names, when this machine has it."""
    name = meta.get('robot')
    if not isinstance(name, str) or not name:
        return None
    try:
        return load_robot(name)
    except (FileNotFoundError, ValueError):
        return None  # recorded elsewhere: the dataset.yaml's own joints and topics still apply


def recorded_rate_hz(source: PathLike) -> Optional[float]:
    """Return the control rate ``dataset.yaml`` recorded (``rates.control_rate_hz``), if any."""
    meta = read_dataset_yaml(source) if Path(source).is_dir() else None
    rates = (meta or {}).get('rates')
    rate = rates.get('control_rate_hz') if isinstance(rates, dict) else None
    if isinstance(rate, (int, float)) and not isinstance(rate, bool) and rate > 0:
        return float(rate)
    return None


def mapping_for_source(source: PathLike) -> TopicMapping:
    """
    Return the mapping of the recorded robot, with joints and topics from ``dataset.yaml``.

    Without a ``dataset.yaml`` (plain bags) the default robot's mapping applies.

    A recorder's ``topics`` (role -> topic) name every recorded signal, so optional roles it
    lacks are switched off rather than guessed.
    """
    meta = read_dataset_yaml(source) if Path(source).is_dir() else None
    if not meta:
        return TopicMapping()
    data: Dict[str, Any] = {}
    robot = _recorded_robot(meta)
    if robot is not None:
        data.update(TopicMapping.for_robot(robot).to_dict())
    if meta.get('joint_names'):
        data['joint_names'] = [str(n) for n in meta['joint_names']]
    if isinstance(meta.get('gripper'), dict):
        # The recorded gripper model says which joints make gripper_width (none: no width).
        from lam_ros.description.gripper import gripper_from_dict
        try:
            data['gripper_joints'] = list(gripper_from_dict(meta['gripper'],
                                                            'dataset.yaml').width_joints)
        except ValueError:
            pass  # a model this version cannot read: the robot description's joints stay
    roles = meta.get('topics')
    if isinstance(roles, dict) and roles:
        for role in ('joint_state', 'command'):
            if isinstance(roles.get(role), str):
                data[f'{role}_topic'] = roles[role]
        for role in ('object_pose', 'goal_pose', 'ee_pose', 'success'):
            topic = roles.get(role)
            data[f'{role}_topic'] = topic if isinstance(topic, str) else None
        known = data['cameras'] if 'cameras' in data else robot_cameras(_robot())
        data['cameras'] = _recorded_cameras(meta, known, roles)
    return TopicMapping.from_dict(data)


def _recorded_cameras(meta: Dict[str, Any], known: Dict[str, Dict[str, Optional[str]]],
                      roles: Dict[str, Any]) -> Dict[str, Dict[str, Optional[str]]]:
    """
    Return the cameras a recording holds: the known cameras whose topics it recorded.

    A recording of one camera on other topics (``topics.image`` / ``topics.depth`` of
    ``dataset.yaml``, e.g. ``/camera/image_raw``) becomes the ``scene`` camera.
    """
    types = meta.get('topic_types')
    recorded = set(types) if isinstance(types, dict) else set()
    out = {}
    for name, topics in known.items():
        kept = {kind: topic for kind, topic in topics.items() if topic in recorded}
        if kept:
            out[name] = kept
    used = {t for topics in out.values() for t in topics.values()}
    legacy = {kind: roles.get(role) for kind, role in (('rgb', 'image'), ('depth', 'depth'))
              if isinstance(roles.get(role), str) and roles.get(role) not in used}
    if legacy and 'scene' not in out:
        out['scene'] = legacy
    return out


def _check_cameras(value: Any) -> Dict[str, Dict[str, Optional[str]]]:
    """Return ``cameras`` checked: name -> {rgb/depth: topic or None}."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f'cameras must map camera names to {{rgb: topic, depth: topic}}, '
                         f'got {value!r}')
    out: Dict[str, Dict[str, Optional[str]]] = {}
    for name, topics in value.items():
        check_camera_name(name, 'cameras')
        if topics is None:
            continue
        if isinstance(topics, str):
            topics = {'rgb': topics}
        if not isinstance(topics, dict) or set(topics) - set(IMAGE_KINDS):
            raise ValueError(f'cameras[{name!r}] must map rgb and/or depth to topics, got '
                             f'{topics!r}')
        for kind, topic in topics.items():
            if topic is not None and (not isinstance(topic, str) or not topic.startswith('/')):
                raise ValueError(f'cameras[{name!r}][{kind!r}] must be an absolute topic name '
                                 f'or null, got {topic!r}')
        out[name] = {kind: topics[kind] for kind in sorted(topics)}
    return out
