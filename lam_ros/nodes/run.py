"""How every lam_ros node starts and stops: --help, one-line start-up errors, clean SIGINT."""

from dataclasses import fields
import faulthandler
import inspect
import re
import signal
import sys
import textwrap
import time
import typing
from typing import Any, Callable, Optional, Sequence

from lam_ros.nodes.common import _element_type, _is_parameter, field_docs
import rclpy
from rclpy.context import Context
from rclpy.exceptions import NameValidationException, ParameterException
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node


_TYPE_NAMES = {bool: 'bool', int: 'integer', float: 'double', str: 'string'}
_UNITS = (('_hz', 'Hz'), ('_s', 's'), ('_m', 'm'), ('_rad', 'rad'), ('_m_s', 'm/s'),
          ('_rad_s', 'rad/s'))


def _type_name(value: Any, annotation: Any) -> str:
    if isinstance(value, (list, tuple)):
        element = _element_type(annotation) or (type(value[0]) if value else str)
        return _TYPE_NAMES.get(element, 'string') + '[]'
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def parameter_help(configs: Sequence[tuple]) -> list[str]:
    """
    Describe the parameters declare_config makes of ``(prefix, config[, skip])`` entries.

    One entry per parameter: name, ROS type, unit (from the name's suffix: _hz, _s, _m,
    _rad), default, then the field's docstring on the next line.
    """
    lines = []
    for prefix, config, *skip in configs:
        docs = field_docs(type(config))
        hints = typing.get_type_hints(type(config))
        for f in fields(config):
            value = getattr(config, f.name)
            if not _is_parameter(f, value, skip[0] if skip else ()):
                continue
            unit = next((u for suffix, u in sorted(_UNITS, key=lambda x: -len(x[0]))
                         if f.name.endswith(suffix)), '')
            shown = "''" if value == '' else list(value) if isinstance(value, tuple) else value
            lines.append(f'  {prefix}{f.name} ({_type_name(value, hints.get(f.name))}'
                         f'{", " + unit if unit else ""}, default: {shown})')
            lines.extend(textwrap.wrap(docs.get(f.name, ''), 92, initial_indent=' ' * 6,
                                       subsequent_indent=' ' * 6))
    return lines


def help_requested(args: Optional[list]) -> bool:
    """Return whether the command line asks for --help (before any --ros-args)."""
    argv = list(sys.argv[1:] if args is None else args)
    if '--ros-args' in argv:
        argv = argv[:argv.index('--ros-args')]
    return '-h' in argv or '--help' in argv


def node_help(name: str, doc: Optional[str], configs: Sequence[tuple]) -> str:
    """Return a node's --help text: what it does and its parameters."""
    text = [f'usage: ros2 run lam_ros {name} [--ros-args -p NAME:=VALUE ...]', '']
    if doc:
        text += [inspect.cleandoc(doc), '']
    text.append('parameters (name (type, unit, default)):')
    text += parameter_help(configs)
    return '\n'.join(text)


# ---- main() ----

class NodeFailed(RuntimeError):
    """Raised by a node (also from a callback) to stop with a clear message and status 1."""


STARTUP_ERRORS = (ValueError, RuntimeError, OSError, ParameterException,
                  NameValidationException)
"""What a node's constructor raises for bad parameters, names, files or a full disk."""


def _one_line(exc: BaseException) -> str:
    text = ' '.join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in text:
        text = f'{text}: {exc.filename}'
    return text


def _build(node_factory: Callable[[], Node]) -> Node:
    """
    Call ``node_factory``; a class whose constructor fails is torn down here.

    The half-built node is already registered with the rclpy context, whose shutdown would
    call the subclass's ``destroy_node`` on an object that lacks what it cleans up.
    """
    if not (isinstance(node_factory, type) and issubclass(node_factory, Node)):
        return node_factory()
    node = node_factory.__new__(node_factory)
    try:
        node.__init__()
    except BaseException:
        if getattr(node, '_context', None) is not None:
            try:
                Node.destroy_node(node)
            except Exception:  # best effort: the start-up error is what gets reported
                pass
        raise
    return node


def _shutdown_follows(wait_s: float = 1.0, context: Optional[Context] = None) -> bool:
    """Return True when rclpy's (default) context is shut down now or within ``wait_s`` s."""
    deadline = time.monotonic() + wait_s
    while rclpy.ok(context=context):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def quiet_task_teardown(unraisable: Any) -> None:
    """
    ``sys.unraisablehook`` that drops one known rclpy shutdown message and passes on the rest.

    rclpy (Jazzy) can leave a Task half-built when the context shuts down under a callback;
    its ``Future.__del__`` then fails with "'Task' object has no attribute ..." and Python
    prints that as a traceback on an otherwise clean Ctrl-C.
    """
    exc = getattr(unraisable, 'exc_value', None)
    if isinstance(exc, AttributeError) and str(exc).startswith("'Task' object has no attribute"):
        return
    sys.__unraisablehook__(unraisable)


def run_node(node_factory: Callable[[], Node], args: Optional[list] = None,
             configs: Sequence[tuple] = ()) -> int:
    """
    Init rclpy, build the node, spin it until shutdown and clean up; return the exit status.

    ``--help`` (or ``-h``) before any ``--ros-args`` prints the node's module docstring and
    the parameters of ``configs`` (``(prefix, config instance[, skip])``, as given to
    declare_config) and returns 0 without starting anything.

    One SIGINT (or an external shutdown) ends the spin quietly with status 0; SIGUSR1 prints
    every thread's stack to stderr (for a node that seems stuck) and lets it run on. Bad
    parameters, names or files at start-up (:data:`STARTUP_ERRORS`) and ``NodeFailed`` at
    any time are printed as one line, without a traceback, with status 1. A node with a
    ``finished`` future (rclpy.task.Future) stops by itself when that future completes.
    """
    # SimNode -> sim_node: the executable's name, for an error before the node exists.
    name = re.sub(r'(?<!^)(?=[A-Z])', '_', getattr(node_factory, '__name__', 'node')).lower()
    if help_requested(args):
        module = sys.modules.get(getattr(node_factory, '__module__', ''))
        print(node_help(name, getattr(module, '__doc__', None), configs))
        return 0
    sys.unraisablehook = quiet_task_teardown
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    try:
        rclpy.init(args=args)
    except Exception as exc:  # e.g. a malformed --ros-args remapping or parameter
        print(f'{name}: {_one_line(exc)}', file=sys.stderr, flush=True)
        return 1
    node = None
    try:
        try:
            node = _build(node_factory)
        except STARTUP_ERRORS as exc:
            raise NodeFailed(_one_line(exc)) from None
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
        # SIGINT shuts the context down from the signal handler; a callback or a take that
        # was running then fails ("context is invalid", "Unable to convert call argument").
        # The failure can come a moment before the context reports the shutdown: wait for it.
        if _shutdown_follows():
            return 0
        raise
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
