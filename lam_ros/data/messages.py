"""
ROS 2 message objects and CDR bytes without a ROS runtime, through one ``rosbags`` typestore.

Every part of the package that writes or reads bags uses :data:`TYPESTORE` so that message
definitions (and their type hashes in ``metadata.yaml``) match the Kilted message packages.

Poses inside the package are 7 floats ``[x, y, z, qw, qx, qy, qz]``; ROS messages carry the
quaternion as ``x, y, z, w``. The converters here are the only place that swaps the order.
"""

import math
from typing import Any, Callable, Optional, Sequence

import numpy as np
from rosbags.serde import SerdeError
from rosbags.typesys import get_typestore, Stores

# The PyPI ROS wheels are Kilted; its store carries the same definitions and RIHS01 hashes.
TYPESTORE = get_typestore(Stores.ROS2_KILTED)

JOINT_STATE = 'sensor_msgs/msg/JointState'
FLOAT64_ARRAY = 'std_msgs/msg/Float64MultiArray'
JOINT_TRAJECTORY = 'trajectory_msgs/msg/JointTrajectory'
POSE_STAMPED = 'geometry_msgs/msg/PoseStamped'
BOOL = 'std_msgs/msg/Bool'
STRING = 'std_msgs/msg/String'
IMAGE = 'sensor_msgs/msg/Image'
CAMERA_INFO = 'sensor_msgs/msg/CameraInfo'
JOY = 'sensor_msgs/msg/Joy'

# Fast CDR may append up to one 8-byte alignment block after a trailing empty float64
# sequence (with uninitialised bytes); anything longer is a real size mismatch.
_MAX_TRAILING_PADDING = 15

_IMAGE_ENCODINGS = {
    (np.dtype(np.uint8), 3): 'rgb8',
    (np.dtype(np.uint8), 4): 'rgba8',
    (np.dtype(np.uint8), 1): 'mono8',
    (np.dtype(np.uint16), 1): '16UC1',
    (np.dtype(np.float32), 1): '32FC1',
}

_T = TYPESTORE.types


def _f64(values: Any, what: str) -> np.ndarray:
    """Return a contiguous 1-D float64 copy of ``values``."""
    if values is None:
        return np.zeros(0, dtype=np.float64)
    array = np.ascontiguousarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f'{what} must be a 1-D sequence of floats, got shape {array.shape}')
    return array


def _ns_parts(stamp_ns: int, what: str) -> dict:
    stamp_ns = int(stamp_ns)
    if stamp_ns < 0:
        raise ValueError(f'{what} must be >= 0 nanoseconds, got {stamp_ns}')
    return {'sec': stamp_ns // 1_000_000_000, 'nanosec': stamp_ns % 1_000_000_000}


def seconds_to_ns(seconds: float) -> int:
    """Return ``seconds`` as integer nanoseconds (rounded), the stamp unit of the builders."""
    if not math.isfinite(seconds):
        raise ValueError(f'a time must be finite, got {seconds}')
    return int(round(seconds * 1e9))


def stamp_to_ns(stamp: Any) -> int:
    """Return the nanoseconds of a ``builtin_interfaces/msg/Time`` (rosbags or rclpy object)."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def pose7_from_msg(msg: Any) -> np.ndarray:
    """Return ``[x, y, z, qw, qx, qy, qz]`` from a ``Pose`` or ``PoseStamped`` message."""
    pose = getattr(msg, 'pose', msg)
    p, q = pose.position, pose.orientation
    return np.array([p.x, p.y, p.z, q.w, q.x, q.y, q.z], dtype=np.float64)


class MessageBuilder:
    """
    Builds ROS 2 messages from arrays; the one place that maps arrays onto message fields.

    ``make(msgtype, **fields)`` creates one message object: :data:`ROSBAGS` makes rosbags
    objects (for bags), ``lam_ros.nodes.common.MSG`` rclpy ones (for topics). Every builder
    takes the stamp first, in integer nanoseconds, then the frame id, then the payload.
    """

    def __init__(self, make: Callable[..., Any]) -> None:
        """Create messages with ``make(msgtype, **fields)``."""
        self.make = make

    def time(self, stamp_ns: int) -> Any:
        """Return a ``builtin_interfaces/msg/Time`` for a non-negative stamp (ns)."""
        return self.make('builtin_interfaces/msg/Time', **_ns_parts(stamp_ns, 'stamp_ns'))

    def duration(self, duration_ns: int) -> Any:
        """Return a ``builtin_interfaces/msg/Duration`` for a non-negative span (ns)."""
        return self.make('builtin_interfaces/msg/Duration',
                         **_ns_parts(duration_ns, 'duration_ns'))

    def header(self, stamp_ns: int, frame_id: str = '') -> Any:
        """Return a ``std_msgs/msg/Header``."""
        return self.make('std_msgs/msg/Header', stamp=self.time(stamp_ns),
                         frame_id=str(frame_id))

    def joint_state(self, stamp_ns: int, names: Sequence[str], pos: Any, vel: Any = None,
                    effort: Any = None) -> Any:
        """Return a ``sensor_msgs/msg/JointState``; ``vel``/``effort`` may be omitted."""
        names = [str(n) for n in names]
        pos, vel, effort = _f64(pos, 'pos'), _f64(vel, 'vel'), _f64(effort, 'effort')
        for label, array in (('pos', pos), ('vel', vel), ('effort', effort)):
            if array.size not in (0, len(names)):
                raise ValueError(f'{label} has {array.size} values but there are {len(names)} '
                                 f'joint names; expected {len(names)} or none')
        return self.make(JOINT_STATE, header=self.header(stamp_ns), name=names, position=pos,
                         velocity=vel, effort=effort)

    def float64_array(self, values: Any) -> Any:
        """Return a ``std_msgs/msg/Float64MultiArray`` with an empty layout (a command)."""
        layout = self.make('std_msgs/msg/MultiArrayLayout', dim=[], data_offset=0)
        return self.make(FLOAT64_ARRAY, layout=layout, data=_f64(values, 'values'))

    def joint_trajectory(self, stamp_ns: int, joint_names: Sequence[str], positions: Any,
                         times_from_start_s: Sequence[float],
                         velocities: Optional[Any] = None) -> Any:
        """
        Return a ``trajectory_msgs/msg/JointTrajectory`` from ``positions`` (N, J) or (J,).

        A zero stamp means 'start on receipt', as the joint_trajectory_controller reads it.
        """
        positions = np.asarray(positions, dtype=np.float64)
        if positions.ndim == 1:
            positions = positions[None]
        names = [str(n) for n in joint_names]
        if positions.ndim != 2 or positions.shape[1] != len(names):
            raise ValueError(f'positions must have shape (N, {len(names)}), got '
                             f'{positions.shape}')
        if len(times_from_start_s) != positions.shape[0]:
            raise ValueError(f'times_from_start_s has {len(times_from_start_s)} entries for '
                             f'{positions.shape[0]} points; expected one per point')
        if velocities is not None:
            velocities = np.asarray(velocities, dtype=np.float64).reshape(positions.shape)
        empty = np.zeros(0, dtype=np.float64)
        points = [self.make(
            'trajectory_msgs/msg/JointTrajectoryPoint', positions=positions[i].copy(),
            velocities=empty if velocities is None else velocities[i].copy(),
            accelerations=empty, effort=empty,
            time_from_start=self.duration(seconds_to_ns(float(t_s))))
            for i, t_s in enumerate(times_from_start_s)]
        return self.make(JOINT_TRAJECTORY, header=self.header(stamp_ns), joint_names=names,
                         points=points)

    def pose_stamped(self, stamp_ns: int, frame_id: str, pose7: Any) -> Any:
        """Return a ``geometry_msgs/msg/PoseStamped`` from ``[x, y, z, qw, qx, qy, qz]``."""
        p = _f64(pose7, 'pose7')
        if p.size != 7:
            raise ValueError(f'pose7 must be [x, y, z, qw, qx, qy, qz] (7 floats), got {p.size}')
        position = self.make('geometry_msgs/msg/Point', x=float(p[0]), y=float(p[1]),
                             z=float(p[2]))
        orientation = self.make('geometry_msgs/msg/Quaternion', x=float(p[4]), y=float(p[5]),
                                z=float(p[6]), w=float(p[3]))
        pose = self.make('geometry_msgs/msg/Pose', position=position, orientation=orientation)
        return self.make(POSE_STAMPED, header=self.header(stamp_ns, frame_id), pose=pose)

    def bool_msg(self, value: bool) -> Any:
        """Return a ``std_msgs/msg/Bool``."""
        return self.make(BOOL, data=bool(value))

    def string_msg(self, value: str) -> Any:
        """Return a ``std_msgs/msg/String``."""
        return self.make(STRING, data=str(value))

    def image(self, stamp_ns: int, frame_id: str, array: Any,
              encoding: Optional[str] = None) -> Any:
        """
        Return a ``sensor_msgs/msg/Image`` from an (H, W) or (H, W, C) array.

        The encoding follows from the dtype and channels (uint8 x3 -> ``rgb8``, float32 x1 ->
        ``32FC1`` for depth in metres, ...) unless given.
        """
        array = np.ascontiguousarray(array)
        if array.ndim == 2:
            array = array[:, :, None]
        if array.ndim != 3:
            raise ValueError(f'image must have shape (H, W) or (H, W, C), got {array.shape}')
        height, width, channels = array.shape
        if encoding is None:
            encoding = _IMAGE_ENCODINGS.get((array.dtype, channels))
            if encoding is None:
                raise ValueError(f'no image encoding for dtype {array.dtype} with {channels} '
                                 f'channels; expected one of {sorted(_IMAGE_ENCODINGS.values())}'
                                 ' or pass encoding=')
        data = np.frombuffer(array.astype(array.dtype.newbyteorder('<'), copy=False).tobytes(),
                             dtype=np.uint8)
        return self.make(IMAGE, header=self.header(stamp_ns, frame_id), height=height,
                         width=width, encoding=encoding, is_bigendian=0,
                         step=width * channels * array.itemsize, data=data)

    def camera_info(self, stamp_ns: int, frame_id: str, width: int, height: int,
                    k: Any) -> Any:
        """Return a distortion-free ``sensor_msgs/msg/CameraInfo`` from the 3x3 intrinsics."""
        k = np.asarray(k, dtype=np.float64)
        if k.shape not in ((3, 3), (9,)):
            raise ValueError(f'k must be the 3x3 intrinsic matrix, got shape {k.shape}')
        k = k.reshape(3, 3)
        p = np.zeros((3, 4), dtype=np.float64)
        p[:, :3] = k
        roi = self.make('sensor_msgs/msg/RegionOfInterest', x_offset=0, y_offset=0, height=0,
                        width=0, do_rectify=False)
        return self.make(CAMERA_INFO, header=self.header(stamp_ns, frame_id),
                         height=int(height), width=int(width), distortion_model='plumb_bob',
                         d=np.zeros(5, dtype=np.float64), k=k.ravel().copy(),
                         r=np.eye(3).ravel(), p=p.ravel(), binning_x=0, binning_y=0, roi=roi)


ROSBAGS = MessageBuilder(lambda msgtype, **fields: _T[msgtype](**fields))
"""Builds rosbags message objects, ready for :func:`serialize` and bag writers."""

time_msg = ROSBAGS.time
header = ROSBAGS.header
joint_state = ROSBAGS.joint_state
float64_array = ROSBAGS.float64_array
joint_trajectory = ROSBAGS.joint_trajectory
pose_stamped = ROSBAGS.pose_stamped
bool_msg = ROSBAGS.bool_msg
string_msg = ROSBAGS.string_msg
image = ROSBAGS.image
camera_info = ROSBAGS.camera_info


def image_to_array(msg: Any) -> np.ndarray:
    """Return the pixels of a ``sensor_msgs/msg/Image`` as an (H, W, C) array."""
    dtypes = {v: k for k, v in _IMAGE_ENCODINGS.items()}
    dtypes['bgr8'] = (np.dtype(np.uint8), 3)
    dtypes['bgra8'] = (np.dtype(np.uint8), 4)
    if msg.encoding not in dtypes:
        raise ValueError(f'unsupported image encoding {msg.encoding!r}; expected one of '
                         f'{sorted(dtypes)}')
    dtype, channels = dtypes[msg.encoding]
    dtype = dtype.newbyteorder('>' if msg.is_bigendian else '<')
    row_bytes = msg.width * channels * dtype.itemsize
    data = bytes(msg.data)
    if msg.width < 1 or msg.height < 1 or msg.step < row_bytes \
            or len(data) != msg.height * msg.step:
        raise ValueError(f'malformed {msg.width}x{msg.height} {msg.encoding} image: step '
                         f'{msg.step} (at least {row_bytes}) and {len(data)} data bytes (height '
                         f'x step = {msg.height * msg.step}) do not fit together')
    rows = np.frombuffer(data, dtype=np.uint8).reshape(msg.height, msg.step)
    pixels = np.ascontiguousarray(rows[:, :row_bytes]).view(dtype)
    return pixels.reshape(msg.height, msg.width, channels).astype(dtype.newbyteorder('='))


def serialize(msg: Any, msgtype: Optional[str] = None) -> bytes:
    """Return the CDR (little-endian) bytes of a rosbags message object."""
    msgtype = msgtype or getattr(msg, '__msgtype__', None)
    if msgtype not in TYPESTORE.types:
        raise ValueError(f'unknown message type {msgtype!r}; expected a ROS 2 type such as '
                         f'{JOINT_STATE!r}')
    return bytes(TYPESTORE.serialize_cdr(msg, msgtype))


def _deserialize_with_size(raw: Any, msgtype: str) -> tuple:
    """Return ``(message, used_bytes)`` from CDR bytes, allowing Fast CDR's trailing padding."""
    if msgtype not in TYPESTORE.types:
        raise ValueError(f'unknown message type {msgtype!r}; expected a ROS 2 type such as '
                         f'{JOINT_STATE!r}')
    raw = memoryview(raw).cast('B')
    if len(raw) < 4 or bytes(raw[:2]) not in (b'\x00\x00', b'\x00\x01'):
        raise SerdeError(f'{msgtype}: not CDR data (missing the 4-byte encapsulation header)')
    msgdef = TYPESTORE.get_msgdef(msgtype)
    func = msgdef.deserialize_cdr_le if raw[1] else msgdef.deserialize_cdr_be
    try:
        message, pos = func(raw[4:], 0, msgdef.cls, TYPESTORE)
    except Exception as exc:  # struct.error, IndexError... on truncated or corrupt bytes
        raise SerdeError(f'could not deserialize {msgtype}: {exc}') from exc
    used = pos + 4
    if used > len(raw) or len(raw) - used > _MAX_TRAILING_PADDING:
        raise SerdeError(f'{msgtype}: CDR size mismatch ({len(raw)} bytes, message uses {used})')
    return message, used


def deserialize(raw: Any, msgtype: str) -> Any:
    """
    Return the rosbags message object for CDR bytes.

    Accepts what ``rclpy`` / Fast DDS produce, which may carry padding after the last
    field that ``TYPESTORE.deserialize_cdr`` rejects. Raises ``SerdeError`` on corrupt data.
    """
    return _deserialize_with_size(raw, msgtype)[0]


def normalize_cdr(raw: Any, msgtype: str) -> bytes:
    """
    Return CDR bytes without trailing padding, so strict readers accept them.

    Bags store what this returns, so any rosbags reader (and ``ros2 bag``, Foxglove) can
    decode them with its default settings.
    """
    used = _deserialize_with_size(raw, msgtype)[1]
    return bytes(memoryview(raw).cast('B')[:used])
