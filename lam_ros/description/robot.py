"""
The robot description: one YAML per arm under ``config/robots/``, read by every part.

A description says which joints are commanded and in which order, how the gripper maps onto
them, where the URDF (and so the joint limits) comes from, the base, tool and camera frames,
the command and state topics, the control rate and the home pose. The simulator, the scripted
expert, the recorder, the dataset builder, training, evaluation and the nodes all read it, so
a new arm is a new YAML and a new control rate is one number in it. ROS-free, torch-free and
pybullet-free: the URDF path is resolved only when asked for.

``load_robot('panda')`` reads ``config/robots/panda.yaml`` (installed or in the source tree);
``load_robot('/path/to/arm.yaml')`` reads any file of the same shape.
"""

from dataclasses import asdict, dataclass, field, fields, MISSING
import functools
import math
import os
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

from lam_ros.control.limits import JointLimits, load_urdf_limits
from lam_ros.description.files import share_path
from lam_ros.description.gripper import gripper_from_dict, GripperSpec
import numpy as np
import yaml

DEFAULT_ROBOT = 'panda'
"""The robot every entry point uses unless it is given another name or path."""

_LIMITS: Dict[str, JointLimits] = {}
_PYBULLET_DATA = 'pybullet_data://'
_PACKAGE = 'package://lam_ros/'


@dataclass(frozen=True)
class Frames:
    """Frame ids the robot's messages and poses use."""

    base: str
    """Frame of every pose (object, goal, end effector): the robot base."""
    tool: str
    """Link whose pose is the end-effector pose (between the fingertips)."""
    cameras: Dict[str, str] = field(default_factory=dict)
    """Camera name -> frame id of its images and camera info; a camera not listed uses
    ``<name>_camera_optical_frame``."""
    tool_offset: Tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Position (m) of the tool point in the ``tool`` link, for a URDF without a link between
    the fingertips (the xArm's gripper base sits 0.17 m behind them)."""

    def __post_init__(self) -> None:
        """Check the tool offset is three numbers."""
        offset = tuple(float(v) for v in self.tool_offset)
        if len(offset) != 3 or not all(math.isfinite(v) for v in offset):
            raise ValueError(f'frames.tool_offset must be 3 finite numbers (m), got '
                             f'{list(self.tool_offset)}')
        object.__setattr__(self, 'tool_offset', offset)
        object.__setattr__(self, 'cameras', _camera_map(self.cameras, 'frames.cameras'))

    def camera_frame(self, camera: str) -> str:
        """Return the frame id of ``camera``'s images."""
        return self.cameras.get(camera) or f'{camera}_camera_optical_frame'


@dataclass(frozen=True)
class Workspace:
    """The box (base frame) Cartesian teleop keeps the tool target in."""

    min_m: Tuple[float, float, float]
    """Lower corner (m)."""
    max_m: Tuple[float, float, float]
    """Upper corner (m)."""

    def __post_init__(self) -> None:
        """Check the box has three coordinates per corner, each below the other."""
        lo = tuple(float(v) for v in self.min_m)
        hi = tuple(float(v) for v in self.max_m)
        if len(lo) != 3 or len(hi) != 3 or any(a >= b for a, b in zip(lo, hi)):
            raise ValueError(f'workspace: min_m {list(self.min_m)} must be 3 values each below '
                             f'max_m {list(self.max_m)}')
        object.__setattr__(self, 'min_m', lo)
        object.__setattr__(self, 'max_m', hi)


@dataclass(frozen=True)
class Topics:
    """The topic of each role (absolute names; every node can still remap them)."""

    joint_state: str
    """``sensor_msgs/JointState`` of the arm."""
    command: str
    """``std_msgs/Float64MultiArray`` position command (forward_command_controller)."""
    trajectory_command: str
    """``trajectory_msgs/JointTrajectory`` command (joint_trajectory_controller)."""
    object_pose: str
    """``geometry_msgs/PoseStamped`` of the manipulated object."""
    goal_pose: str
    """``geometry_msgs/PoseStamped`` of the task's goal (tasks with a goal)."""
    success: str
    """``std_msgs/Bool``: whether the task is accomplished."""
    cameras: Dict[str, str] = field(default_factory=dict)
    """Camera name -> namespace of its topics, as a ROS camera driver lays them out:
    ``<ns>/image_raw`` (rgb8), ``<ns>/depth/image_raw`` (32FC1 m), ``<ns>/camera_info``
    (see :data:`CAMERA_TOPICS`); a camera not listed uses ``/<name>_camera``."""

    def __post_init__(self) -> None:
        """Check the camera namespaces."""
        object.__setattr__(self, 'cameras', _camera_map(self.cameras, 'topics.cameras'))

    def camera_topic(self, camera: str, role: str) -> str:
        """Return the topic of ``camera``'s ``role`` (a key of :data:`CAMERA_TOPICS`)."""
        if role not in CAMERA_TOPICS:
            raise ValueError(f'unknown camera topic role {role!r}; expected one of '
                             f'{list(CAMERA_TOPICS)}')
        namespace = self.cameras.get(camera) or f'/{camera}_camera'
        return f'{namespace.rstrip("/")}/{CAMERA_TOPICS[role][0]}'

    def topic_of(self, role: str) -> str:
        """Return the topic of ``role`` (a key of :data:`TOPIC_TYPES`)."""
        if role not in TOPIC_TYPES:
            raise ValueError(f'unknown topic role {role!r}; expected one of {list(TOPIC_TYPES)}')
        return getattr(self, role)


TOPIC_TYPES: Dict[str, str] = {
    'joint_state': 'sensor_msgs/msg/JointState',
    'command': 'std_msgs/msg/Float64MultiArray',
    'trajectory_command': 'trajectory_msgs/msg/JointTrajectory',
    'object_pose': 'geometry_msgs/msg/PoseStamped',
    'goal_pose': 'geometry_msgs/msg/PoseStamped',
    'success': 'std_msgs/msg/Bool',
}
"""Message type of each topic role (the fields of :class:`Topics` but ``cameras``)."""

CAMERA_TOPICS: Dict[str, Tuple[str, str]] = {
    'image': ('image_raw', 'sensor_msgs/msg/Image'),
    'depth': ('depth/image_raw', 'sensor_msgs/msg/Image'),
    'camera_info': ('camera_info', 'sensor_msgs/msg/CameraInfo'),
}
"""Camera topic role -> (topic under the camera's namespace, message type)."""

_OLD_CAMERA_KEYS = {'frames': ('camera',), 'topics': ('image', 'depth', 'camera_info')}


@dataclass(frozen=True)
class RobotDescription:
    """Everything the package needs to know about one arm (see the module docstring)."""

    name: str
    """Robot name, stored in dataset.yaml and in checkpoints."""
    joint_names: Tuple[str, ...]
    """Commanded joints in command / action order, the gripper joint included."""
    gripper: GripperSpec
    """How the gripper maps onto the joints."""
    urdf: str
    """URDF the limits and kinematics come from: ``pybullet_data://<file>``,
    ``package://lam_ros/<file>``, an absolute path, or a path relative to the YAML."""
    frames: Frames
    """Base, tool and camera frame ids."""
    topics: Topics
    """The topic of each role."""
    control_rate_hz: float
    """Rate of commands and policy steps (Hz): teleop, recording, datasets, training."""
    home_pose: Tuple[float, ...]
    """A comfortable start configuration in ``joint_names`` order (rad; gripper in m)."""
    workspace: Optional[Workspace] = None
    """Box the Cartesian teleop target stays in; None: ``TwistConfig``'s default box."""
    source: str = ''
    """The YAML this description was read from ('' when built in code)."""

    def __post_init__(self) -> None:
        """Check that names, gripper, rate and home pose fit together."""
        names = tuple(str(n) for n in self.joint_names)
        object.__setattr__(self, 'joint_names', names)
        object.__setattr__(self, 'home_pose', tuple(float(v) for v in self.home_pose))
        where = f'robot {self.name!r}' + (f' ({self.source})' if self.source else '')
        if not names or len(set(names)) != len(names):
            raise ValueError(f'{where}: joint_names must be distinct names, got {list(names)}')
        if self.gripper.commanded and self.gripper.joint not in names:
            raise ValueError(f'{where}: gripper joint {self.gripper.joint!r} is not one of '
                             f'joint_names {list(names)}')
        overlap = set(self.gripper.mimic_joints) & set(names)
        if overlap:
            raise ValueError(f'{where}: mimic joints {sorted(overlap)} must not be commanded')
        if not (math.isfinite(self.control_rate_hz) and self.control_rate_hz > 0):
            raise ValueError(f'{where}: control_rate_hz must be a positive number, got '
                             f'{self.control_rate_hz}')
        if len(self.home_pose) != len(names):
            raise ValueError(f'{where}: home_pose needs {len(names)} values (one per joint in '
                             f'joint_names), got {len(self.home_pose)}')

    @property
    def action_dim(self) -> int:
        """Length of a command / action vector."""
        return len(self.joint_names)

    @property
    def arm_joint_names(self) -> Tuple[str, ...]:
        """Commanded joints other than the gripper."""
        return tuple(n for n in self.joint_names if n != self.gripper.joint)

    @property
    def arm_dof(self) -> int:
        """Return the number of arm joints (6 on the xArm 6, 7 on the Panda)."""
        return len(self.arm_joint_names)

    @property
    def state_joint_names(self) -> Tuple[str, ...]:
        """Joints on the joint-state topic: the commanded ones, then the mimic joints."""
        return self.joint_names + tuple(self.gripper.mimic_joints)

    @property
    def gripper_index(self) -> int:
        """Index of the gripper joint in a command vector (-1 without a gripper)."""
        return self.joint_names.index(self.gripper.joint) if self.gripper.commanded else -1

    def urdf_path(self) -> str:
        """Resolve ``urdf`` to an existing file, or raise FileNotFoundError saying why."""
        ref = self.urdf
        if ref.startswith(_PYBULLET_DATA):
            import pybullet_data  # data files only; does not load the simulator
            path = os.path.join(pybullet_data.getDataPath(), ref[len(_PYBULLET_DATA):])
        elif ref.startswith(_PACKAGE):
            return share_path(*ref[len(_PACKAGE):].split('/', 1))
        elif os.path.isabs(ref) or not self.source:
            path = ref
        else:
            path = os.path.join(os.path.dirname(self.source), ref)
        if not os.path.isfile(path):
            raise FileNotFoundError(f'URDF of robot {self.name!r} not found at {path} '
                                    f'(urdf: {ref!r} in {self.source or "the description"})')
        return path

    def joint_limits(self, names: Optional[Sequence[str]] = None) -> JointLimits:
        """
        Return the URDF's limits of ``names`` (default: the commanded joints), in order.

        The entry of a binary gripper's joint is its action range, 0 (closed) .. 1 (open).
        """
        names = self.joint_names if names is None else tuple(names)
        binary = self.gripper.kind == 'binary' and self.gripper.joint in names
        urdf_names = [n for n in names if not (binary and n == self.gripper.joint)]
        limits = urdf_joint_limits(self.urdf_path(), urdf_names)
        if not binary:
            return limits
        i = list(names).index(self.gripper.joint)
        return JointLimits(tuple(names), np.insert(limits.lower, i, 0.0),
                           np.insert(limits.upper, i, 1.0), np.insert(limits.velocity, i, 10.0),
                           np.insert(limits.effort, i, np.inf))

    def to_dict(self) -> Dict[str, Any]:
        """Return plain data in the YAML's shape (``from_dict`` reads it back)."""
        out = asdict(self)
        out.pop('source')
        out['joint_names'] = list(self.joint_names)
        out['home_pose'] = list(self.home_pose)
        out['gripper'] = self.gripper.to_dict()
        out['frames']['tool_offset'] = list(self.frames.tool_offset)
        if self.workspace is None:
            out.pop('workspace')
        else:
            out['workspace'] = {'min_m': list(self.workspace.min_m),
                                'max_m': list(self.workspace.max_m)}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = '') -> 'RobotDescription':
        """Build a description from the YAML's mapping; unknown keys raise ValueError."""
        where = source or 'robot description'
        if not isinstance(data, Mapping):
            raise ValueError(f'{where}: expected a mapping of name, joint_names, gripper, urdf, '
                             f'frames, ..., got {type(data).__name__}')
        data = dict(data)
        required = ('name', 'joint_names', 'gripper', 'urdf', 'frames', 'topics',
                    'control_rate_hz', 'home_pose')
        _check_keys(where, data, cls, required=required, skip=('source',))
        for key, sub in (('gripper', GripperSpec), ('frames', Frames), ('topics', Topics),
                         ('workspace', Workspace)):
            if key in data:
                value = data[key]
                if not isinstance(value, Mapping):
                    raise ValueError(f'{where}: {key} must be a mapping, got {value!r}')
                if sub is GripperSpec:
                    data[key] = gripper_from_dict(value, where)
                    continue
                old = [k for k in _OLD_CAMERA_KEYS.get(key, ()) if k in value]
                if old:
                    raise ValueError(
                        f'{where}: {key}.{old[0]} is the old single-camera entry; cameras are '
                        f'named now: topics.cameras {{scene: /scene_camera}} (namespace of '
                        f'image_raw, depth/image_raw, camera_info) and frames.cameras '
                        f'{{scene: scene_camera_optical_frame}} (docs/new_arm.md)')
                _check_keys(f'{where}: {key}', value, sub, required=[
                    f.name for f in fields(sub)
                    if f.default is MISSING and f.default_factory is MISSING])
                data[key] = sub(**value)
        try:
            return cls(**data, source=source)
        except TypeError as err:
            raise ValueError(f'{where}: {err}') from err


def _camera_map(value: Any, where: str) -> Dict[str, str]:
    """Return ``value`` as a camera name -> string map, or raise naming the bad entry."""
    from lam_ros.description.camera import check_camera_name
    if not isinstance(value, Mapping):
        raise ValueError(f'{where} must map camera names to strings, got {value!r}')
    for name, entry in value.items():
        check_camera_name(name, where)
        if not isinstance(entry, str) or not entry:
            raise ValueError(f'{where}[{name!r}] must be a non-empty string, got {entry!r}')
    return dict(value)


def urdf_joint_limits(path: str, names: Sequence[str]) -> JointLimits:
    """Return the limits of ``names`` from the URDF at ``path`` (each file is parsed once)."""
    if path not in _LIMITS:
        _LIMITS[path] = load_urdf_limits(path)
    return _LIMITS[path].select(names)


def _check_keys(where: str, data: Mapping[str, Any], cls: type,
                required: Sequence[str] = (), skip: Sequence[str] = ()) -> None:
    known = {f.name for f in fields(cls)} - set(skip)
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f'{where}: unknown keys {unknown}; known: {sorted(known)}')
    missing = [k for k in required if k not in data]
    if missing:
        raise ValueError(f'{where}: missing keys {missing}')


def robot_yaml_path(robot: str) -> str:
    """Return the YAML of ``robot``: a file path as given, else ``config/robots/<robot>.yaml``."""
    if robot.endswith(('.yaml', '.yml')) or os.sep in robot:
        if not os.path.isfile(robot):
            raise FileNotFoundError(f'robot description {robot} does not exist')
        return os.path.abspath(robot)
    try:
        return share_path('config', f'robots/{robot}.yaml')
    except FileNotFoundError as err:
        raise FileNotFoundError(f'no robot description named {robot!r}: {err}. Pass a robot '
                                'name with a config/robots/<name>.yaml, or a path to a '
                                'description YAML (copy config/robots/panda.yaml).') from err


@functools.lru_cache(maxsize=None)
def _load(path: str, mtime_ns: int) -> RobotDescription:
    with open(path, encoding='utf-8') as stream:
        try:
            data = yaml.safe_load(stream)
        except yaml.YAMLError as err:
            raise ValueError(f'{path}: not valid YAML: {err}') from err
    return RobotDescription.from_dict(data, source=path)


def load_robot(robot: Union[None, str, RobotDescription] = None) -> RobotDescription:
    """
    Load a robot description by name (``config/robots/<name>.yaml``) or YAML path.

    ``None`` or '' loads ``DEFAULT_ROBOT``; a description passes through. A description is
    immutable and read once per file version, so calling this wherever a default is needed
    costs nothing.
    """
    if isinstance(robot, RobotDescription):
        return robot
    path = robot_yaml_path(robot or DEFAULT_ROBOT)
    return _load(path, os.stat(path).st_mtime_ns)
