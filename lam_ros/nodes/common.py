"""
Shared rclpy helpers: QoS profiles, message conversion, parameters, and ``run_node``.

Messages are built by :data:`MSG`, the builders of ``lam_ros.data.messages`` making rclpy
objects: one field mapping for topics and bags (poses ``[x, y, z, qw, qx, qy, qz]`` in
arrays, x-y-z-w in messages).

QoS, as in ros2_control: every publisher is reliable (a reliable publisher serves both
reliable and best-effort subscribers); state subscribers are best-effort keep-last, so
they accept any publisher and never queue stale samples; command subscribers are
reliable, like a ros2_control controller's.
"""

from __future__ import annotations

import array
import ast
from dataclasses import fields, is_dataclass, MISSING
import functools
import importlib
import inspect
import textwrap
import typing
from typing import Any, Iterable, Sequence

from lam_ros.data.messages import (
    FLOAT64_ARRAY, JOINT_TRAJECTORY, MessageBuilder, pose7_from_msg, stamp_to_ns)
import numpy as np
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import InvalidTopicNameException, ParameterException
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.validate_full_topic_name import validate_full_topic_name
from rclpy.validate_topic_name import validate_topic_name
from sensor_msgs.msg import JointState

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


# ---- messages ----

@functools.lru_cache(maxsize=None)
def message_class(msgtype: str) -> Any:
    """Return the rclpy message class of ``pkg/msg/Name``."""
    package, _, name = msgtype.split('/')
    return getattr(importlib.import_module(f'{package}.msg'), name)


def _rclpy_value(value: Any) -> Any:
    # rclpy takes array.array / bytes for sequences on every distro; numpy only on some.
    if isinstance(value, np.ndarray):
        if value.dtype == np.uint8:
            return value.tobytes()
        if value.dtype == np.float64:
            out = array.array('d')
            out.frombytes(np.ascontiguousarray(value).tobytes())
            return out
        return value.tolist()
    return value


def _rclpy_make(msgtype: str, **fields: Any) -> Any:
    return message_class(msgtype)(**{k: _rclpy_value(v) for k, v in fields.items()})


MSG = MessageBuilder(_rclpy_make)
"""Builds rclpy messages with the same builders (and argument order) as bags use."""


def stamp_s(stamp: Any) -> float:
    """Convert a builtin_interfaces/Time (or Duration) to seconds."""
    return stamp_to_ns(stamp) * 1e-9


def pose_from_msg(msg: Any) -> np.ndarray:
    """Return ``[x, y, z, qw, qx, qy, qz]`` from a Pose or PoseStamped; NaN/Inf: ValueError."""
    out = pose7_from_msg(msg)
    if not np.all(np.isfinite(out)):
        raise ValueError(f'pose message has NaN/Inf: {out.tolist()}')
    return out


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


INTERFACES = ('forward', 'trajectory')
"""Command interfaces: forward (Float64MultiArray) or trajectory (JointTrajectory)."""

DEFAULT_COMMAND_TOPICS = {'forward': '/forward_position_controller/commands',
                          'trajectory': '/joint_trajectory_controller/joint_trajectory'}
"""The ros2_control default topic of each command interface."""


class CommandOutput:
    """Publishes joint commands on a forward or a trajectory controller's topic, reliably."""

    def __init__(self, node: Node, interface: str, topic: str, joint_names: Sequence[str],
                 point_time_s: float = 0.1) -> None:
        """Publish on ``topic`` (empty: the interface's default) for ``joint_names``."""
        if interface not in INTERFACES:
            raise ValueError(f'command_interface must be one of {INTERFACES}, got {interface!r}')
        self.interface = interface
        self.joint_names = list(joint_names)
        self.point_time_s = float(point_time_s)
        msgtype = FLOAT64_ARRAY if interface == 'forward' else JOINT_TRAJECTORY
        self.pub = node.create_publisher(message_class(msgtype),
                                         topic or DEFAULT_COMMAND_TOPICS[interface],
                                         COMMAND_QOS)

    @property
    def topic(self) -> str:
        """Return the resolved topic name."""
        return self.pub.topic_name

    def publish(self, command: Sequence[float]) -> None:
        """Publish one command (joint_names order); a trajectory point starts on receipt."""
        if self.interface == 'forward':
            self.pub.publish(MSG.float64_array(command))
        else:
            self.pub.publish(MSG.joint_trajectory(0, self.joint_names, command,
                                                  [self.point_time_s]))


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
    """
    Declare one parameter with a descriptor and return its value.

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
        try:
            node.declare_parameter(name, _ARRAY_TYPES[element_type], descriptor)
        except ParameterException as err:
            raise ValueError(_parameter_error(name, default, node, err, element_type)) from None
        param = node.get_parameter_or(name, Parameter(name, value=[]))
        value = param.value if param.type_ != Parameter.Type.NOT_SET else []
        return list(value) if value is not None else []
    try:
        value = node.declare_parameter(name, default, descriptor).value
    except ParameterException as err:
        raise ValueError(_parameter_error(name, default, node, err)) from None
    if value is None:  # an empty YAML list arrives as an unset value
        value = [] if isinstance(default, list) else default
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(default, float) and not isinstance(value, float):
        raise ValueError(f'parameter {name!r} must be a number, got {value!r}')
    if isinstance(default, list) and default and isinstance(default[0], float) and value:
        value = [float(v) for v in value]
    return list(value) if isinstance(value, (list, tuple, np.ndarray)) else value


_TYPE_WORDS = {bool: ('true or false', 'booleans'), int: ('an integer', 'integers'),
               float: ('a number', 'numbers'), str: ('a string', 'strings')}


def _expected(default: Any, element_type: type | None) -> str:
    if isinstance(default, list):
        kind = type(default[0]) if default else element_type
        return f'a list of {_TYPE_WORDS.get(kind, ("", "values"))[1]} ([a, b, ...])'
    return _TYPE_WORDS.get(type(default), (type(default).__name__, ''))[0]


def _parameter_error(name: str, default: Any, node: Node, err: Exception,
                     element_type: type | None = None) -> str:
    """Say which parameter is wrong, what it holds and what it takes, in one line."""
    given = ''
    for override in getattr(node, '_parameter_overrides', {}).values():
        if override.name == name:
            given = f', got {short_repr(override.value)}'
    if not given:
        text = str(err).splitlines()[0]
        given = f' ({text})'
    return f'parameter {name!r} must be {_expected(default, element_type)}{given}'


def short_repr(value: Any, limit: int = 60) -> str:
    """Return ``repr(value)`` cut to ``limit`` characters, floats in short form (``1e+308``)."""
    if isinstance(value, float):
        text = f'{value:.6g}'
    elif isinstance(value, (list, tuple, np.ndarray)):
        text = '[' + ', '.join(short_repr(v, limit) for v in list(value)[:8]) + \
            (', ...' if len(value) > 8 else '') + ']'
    else:
        text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + '...'


def _element_type(annotation: Any) -> type | None:
    args = typing.get_args(annotation)
    return args[0] if args and args[0] in _ARRAY_TYPES else None


def _check_topic_names(name: str, value: Any) -> None:
    """Refuse an invalid topic name in parameter ``name`` before anything is created."""
    for topic in value if isinstance(value, (list, tuple)) else [value]:
        if not isinstance(topic, str) or not topic:
            continue
        try:
            (validate_full_topic_name if topic.startswith('/') else validate_topic_name)(topic)
        except InvalidTopicNameException as err:
            reason = str(err).splitlines()[0].split(': ', 1)[-1].rstrip(':')
            raise ValueError(f'parameter {name!r}: invalid topic name {topic!r}: '
                             f'{reason}') from None


def declare_config(node: Node, config: Any, prefix: str = '',
                   skip: Iterable[str] = ()) -> Any:
    """
    Mirror a config dataclass instance into ROS parameters and return the loaded copy.

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
        if not _is_parameter(f, current, skip):
            values[f.name] = current
            continue
        value = declare_param(node, prefix + f.name, current, docs.get(f.name, ''),
                              element_type=_element_type(hints.get(f.name)))
        if isinstance(current, tuple):
            value = tuple(value)
        if f.name.endswith(('_topic', 'topics')):
            _check_topic_names(prefix + f.name, value)
        values[f.name] = value
    try:
        return type(config)(**values)
    except (TypeError, ValueError) as err:
        raise ValueError(f'invalid parameters for {type(config).__name__} on node '
                         f'{node.get_name()}: {err}') from err


def _is_parameter(f: Any, current: Any, skip: Iterable[str]) -> bool:
    """Return whether declare_config makes field ``f`` (value ``current``) a parameter."""
    return not (f.name in skip or is_dataclass(current) or f.default is MISSING
                and f.default_factory is MISSING and current is None)


# The nodes' entry points live in nodes/run.py; imported here so every node keeps one import.
from lam_ros.nodes.run import (  # noqa: E402, F401, I100
    help_requested, node_help, NodeFailed, parameter_help, run_node, STARTUP_ERRORS)
