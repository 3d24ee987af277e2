"""Shared rclpy helpers: QoS profiles, message conversion, parameters, and ``run_node``.

Poses are ``[x, y, z, qw, qx, qy, qz]`` (w-first, docs/architecture.md); ROS messages
carry x-y-z-w, and only the functions here convert between the two.

QoS, as in ros2_control: every publisher is reliable (a reliable publisher serves both
reliable and best-effort subscribers); state subscribers are best-effort keep-last, so
they accept any publisher and never queue stale samples; command subscribers are
reliable, like a ros2_control controller's.
"""

from __future__ import annotations

import ast
from dataclasses import fields, is_dataclass, MISSING
import inspect
import math
import re
import sys
import textwrap
import typing
from typing import Any, Callable, Iterable, Optional, Sequence

from builtin_interfaces.msg import Duration, Time
from geometry_msgs.msg import Pose, PoseStamped
import numpy as np
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy)
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Float64MultiArray, MultiArrayDimension
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from lam_ros.data.messages import pose7_from_msg

COMMAND_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.VOLATILE, history=HistoryPolicy.KEEP_LAST)
"""Commands: reliable, depth 10 (what ros2_control controllers subscribe with)."""

STATE_PUB_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                           durability=DurabilityPolicy.VOLATILE,
                           history=HistoryPolicy.KEEP_LAST)
"""Published state (joint states, poses, clock): reliable, so every subscriber matches."""

STATE_SUB_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT,
                           durability=DurabilityPolicy.VOLATILE,
                           history=HistoryPolicy.KEEP_LAST)
"""Subscribed state: best-effort, newest sample only (sensor-data style)."""

IMAGE_PUB_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                           durability=DurabilityPolicy.VOLATILE,
                           history=HistoryPolicy.KEEP_LAST)
"""Camera images: reliable but depth 1, so a slow subscriber drops rather than queues."""


# ---- time ----

def time_msg(seconds: float) -> Time:
    """Convert seconds to a builtin_interfaces/Time."""
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f'a ROS time must be finite and >= 0 s, got {seconds}')
    sec = int(math.floor(seconds))
    nanosec = int(round((seconds - sec) * 1e9))
    if nanosec >= 1_000_000_000:
        sec, nanosec = sec + 1, nanosec - 1_000_000_000
    return Time(sec=sec, nanosec=nanosec)


def stamp_s(stamp: Time) -> float:
    """Convert a builtin_interfaces/Time (or Duration) to seconds."""
    return float(stamp.sec) + float(stamp.nanosec) * 1e-9


def duration_msg(seconds: float) -> Duration:
    """Convert non-negative seconds to a builtin_interfaces/Duration."""
    t = time_msg(seconds)
    return Duration(sec=t.sec, nanosec=t.nanosec)


# ---- poses ----

def pose_from_msg(msg: PoseStamped | Pose) -> np.ndarray:
    """Return ``[x, y, z, qw, qx, qy, qz]`` from a Pose or PoseStamped."""
    out = pose7_from_msg(msg)
    if not np.all(np.isfinite(out)):
        raise ValueError(f'pose message has NaN/Inf: {out.tolist()}')
    return out


def pose_msg(pose7: Sequence[float], frame_id: str, stamp: Time) -> PoseStamped:
    """Build a PoseStamped from ``[x, y, z, qw, qx, qy, qz]``."""
    p = np.asarray(pose7, dtype=np.float64)
    if p.shape != (7,):
        raise ValueError(f'a pose is 7 floats [x, y, z, qw, qx, qy, qz], got shape {p.shape}')
    msg = PoseStamped()
    msg.header.frame_id = frame_id
    msg.header.stamp = stamp
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in p[:3])
    o = msg.pose.orientation
    o.w, o.x, o.y, o.z = (float(v) for v in p[3:])
    return msg


# ---- joints and commands ----

def joint_state_msg(names: Sequence[str], position: Sequence[float], velocity: Sequence[float],
                    effort: Sequence[float], stamp: Time) -> JointState:
    """Build a JointState (all arrays in ``names`` order)."""
    msg = JointState()
    msg.header.stamp = stamp
    msg.name = list(names)
    msg.position = [float(v) for v in position]
    msg.velocity = [float(v) for v in velocity]
    msg.effort = [float(v) for v in effort]
    return msg


def positions_by_name(msg: JointState, names: Sequence[str]) -> np.ndarray:
    """Select and reorder a JointState's positions by joint name."""
    if len(msg.position) != len(msg.name):
        raise ValueError(f'JointState has {len(msg.name)} names but {len(msg.position)} '
                         'positions')
    index = {n: i for i, n in enumerate(msg.name)}
    missing = [n for n in names if n not in index]
    if missing:
        raise ValueError(f'JointState lacks joints {missing}; it has {list(msg.name)}')
    return np.array([msg.position[index[n]] for n in names], dtype=np.float64)


def velocities_by_name(msg: JointState, names: Sequence[str]) -> np.ndarray:
    """Select a JointState's velocities by name (zeros when the message has none)."""
    if len(msg.velocity) != len(msg.name):
        return np.zeros(len(names))
    index = {n: i for i, n in enumerate(msg.name)}
    return np.array([msg.velocity[index[n]] if n in index else 0.0 for n in names])


def command_msg(values: Sequence[float]) -> Float64MultiArray:
    """Build the forward_command_controller command (Float64MultiArray)."""
    msg = Float64MultiArray()
    data = [float(v) for v in values]
    msg.layout.dim = [MultiArrayDimension(label='joints', size=len(data), stride=len(data))]
    msg.data = data
    return msg


def trajectory_msg(names: Sequence[str], positions: Sequence[float],
                   time_from_start_s: float) -> JointTrajectory:
    """Build a one-point JointTrajectory reaching ``positions`` after ``time_from_start_s``.

    The header stamp stays zero: 'start on receipt', as the joint_trajectory_controller reads it.
    """
    if len(names) != len(positions):
        raise ValueError(f'{len(names)} joint names but {len(positions)} positions')
    msg = JointTrajectory()
    msg.joint_names = list(names)
    point = JointTrajectoryPoint()
    point.positions = [float(v) for v in positions]
    point.time_from_start = duration_msg(time_from_start_s)
    msg.points = [point]
    return msg


# ---- camera ----

def image_msg(rgb: np.ndarray, stamp: Time, frame_id: str) -> Image:
    """Build an rgb8 Image from an (H, W, 3) uint8 array."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f'rgb image must be (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}')
    msg = Image()
    msg.header.stamp, msg.header.frame_id = stamp, frame_id
    msg.height, msg.width = int(rgb.shape[0]), int(rgb.shape[1])
    msg.encoding, msg.is_bigendian, msg.step = 'rgb8', 0, int(rgb.shape[1]) * 3
    msg.data = np.ascontiguousarray(rgb).tobytes()
    return msg


def depth_msg(depth_m: np.ndarray, stamp: Time, frame_id: str) -> Image:
    """Build a 32FC1 Image (metres) from an (H, W) or (H, W, 1) float array."""
    d = np.ascontiguousarray(np.asarray(depth_m, dtype=np.float32).reshape(depth_m.shape[:2]))
    msg = Image()
    msg.header.stamp, msg.header.frame_id = stamp, frame_id
    msg.height, msg.width = int(d.shape[0]), int(d.shape[1])
    msg.encoding, msg.is_bigendian, msg.step = '32FC1', 0, int(d.shape[1]) * 4
    msg.data = d.tobytes()
    return msg


def camera_info_msg(width: int, height: int, fov_y_deg: float, stamp: Time,
                    frame_id: str) -> CameraInfo:
    """Build the CameraInfo of an ideal pinhole camera with a vertical field of view."""
    fy = 0.5 * height / math.tan(math.radians(fov_y_deg) / 2.0)
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    msg = CameraInfo()
    msg.header.stamp, msg.header.frame_id = stamp, frame_id
    msg.width, msg.height = int(width), int(height)
    msg.distortion_model = 'plumb_bob'
    msg.d = [0.0] * 5
    msg.k = [fy, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [fy, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg


# ---- parameters ----

_ARRAY_TYPES = {str: Parameter.Type.STRING_ARRAY, float: Parameter.Type.DOUBLE_ARRAY,
                int: Parameter.Type.INTEGER_ARRAY, bool: Parameter.Type.BOOL_ARRAY}


def field_docs(cls: type) -> dict[str, str]:
    """Return the attribute docstrings of a dataclass (the string after each field)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        body = tree.body[0].body if tree.body else []
        for node, nxt in zip(body, body[1:]):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                    and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                    and isinstance(nxt.value.value, str)):
                docs[node.target.id] = ' '.join(nxt.value.value.split())
    return docs


def declare_param(node: Node, name: str, default: Any, description: str = '', *,
                  read_only: bool = False, value_range: tuple[float, float] | None = None,
                  element_type: type | None = None) -> Any:
    """Declare one parameter with a descriptor and return its value.

    Integers given for a float parameter (a YAML ``1`` for ``1.0``) are accepted.
    ``element_type`` types an empty list default (str, float, int or bool).
    """
    descriptor = ParameterDescriptor(name=name, description=description, read_only=read_only)
    if value_range is not None:
        lo, hi = value_range
        if isinstance(default, bool) or not isinstance(default, (int, float)):
            raise ValueError(f'value_range only applies to numeric parameters, not {name!r}')
        if isinstance(default, int):
            descriptor.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi))]
        else:
            descriptor.floating_point_range = [FloatingPointRange(from_value=float(lo),
                                                                  to_value=float(hi))]
    if isinstance(default, tuple):
        default = list(default)
    if isinstance(default, float) and value_range is None:
        descriptor.dynamic_typing = True
    if isinstance(default, list) and not default:
        if element_type not in _ARRAY_TYPES:
            raise ValueError(f'parameter {name!r} has an empty list default; pass '
                             f'element_type (one of str, float, int, bool)')
        node.declare_parameter(name, _ARRAY_TYPES[element_type], descriptor)
        param = node.get_parameter_or(name, Parameter(name, value=[]))
        value = param.value if param.type_ != Parameter.Type.NOT_SET else []
        return list(value) if value is not None else []
    value = node.declare_parameter(name, default, descriptor).value
    if value is None:  # an empty YAML list arrives as an unset value
        value = [] if isinstance(default, list) else default
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(default, float) and not isinstance(value, float):
        raise ValueError(f'parameter {name!r} must be a number, got {value!r}')
    if isinstance(default, list) and default and isinstance(default[0], float) and value:
        value = [float(v) for v in value]
    return list(value) if isinstance(value, (list, tuple, np.ndarray)) else value


def _element_type(annotation: Any) -> type | None:
    args = typing.get_args(annotation)
    return args[0] if args and args[0] in _ARRAY_TYPES else None


def declare_config(node: Node, config: Any, prefix: str = '',
                   skip: Iterable[str] = ()) -> Any:
    """Mirror a config dataclass instance into ROS parameters and return the loaded copy.

    Each field becomes parameter ``prefix + name`` with the field's docstring as its
    description; nested dataclasses and fields in ``skip`` keep their values.
    """
    if not is_dataclass(config) or isinstance(config, type):
        raise ValueError(f'declare_config needs a dataclass instance, got {config!r}')
    docs = field_docs(type(config))
    hints = typing.get_type_hints(type(config))
    values = {}
    for f in fields(config):
        current = getattr(config, f.name)
        if f.name in skip or is_dataclass(current) or f.default is MISSING and \
                f.default_factory is MISSING and current is None:
            values[f.name] = current
            continue
        value = declare_param(node, prefix + f.name, current, docs.get(f.name, ''),
                              element_type=_element_type(hints.get(f.name)))
        if isinstance(current, tuple):
            value = tuple(value)
        values[f.name] = value
    try:
        return type(config)(**values)
    except (TypeError, ValueError) as err:
        raise ValueError(f'invalid parameters for {type(config).__name__} on node '
                         f'{node.get_name()}: {err}') from err


# ---- main() ----

class NodeFailed(RuntimeError):
    """Raised by a node (also from a callback) to stop with a clear message and status 1."""


def run_node(node_factory: Callable[[], Node], args: Optional[list] = None) -> int:
    """Init rclpy, build the node, spin it until shutdown and clean up; return the exit status.

    One SIGINT (or an external shutdown) ends the spin quietly with status 0. Bad
    parameters at start-up (ValueError, RuntimeError) and ``NodeFailed`` at any time are
    printed as one line, without a traceback, with status 1. A node with a ``finished``
    future (rclpy.task.Future) stops by itself when that future completes.
    """
    rclpy.init(args=args)
    node = None
    # SimNode -> sim_node: the executable's name, for an error before the node exists.
    name = re.sub(r'(?<!^)(?=[A-Z])', '_', getattr(node_factory, '__name__', 'node')).lower()
    try:
        try:
            node = node_factory()
        except (ValueError, RuntimeError) as exc:
            raise NodeFailed(str(exc)) from exc
        finished = getattr(node, 'finished', None)
        if finished is None:
            rclpy.spin(node)
        else:
            rclpy.spin_until_future_complete(node, finished)
        return 0
    except (KeyboardInterrupt, ExternalShutdownException):
        return 0
    except NodeFailed as exc:
        label = node.get_name() if node is not None else name
        print(f'{label}: {exc}', file=sys.stderr, flush=True)
        return 1
    except Exception:
        # SIGINT shuts the context down from the signal handler; a callback that was running
        # then fails to publish ("context is invalid"). That is the shutdown asked for.
        if rclpy.ok():
            raise
        return 0
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
