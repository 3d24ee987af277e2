"""
lam_ros nodes as child processes of a ``lam-ros`` command, without ``ros2 launch``.

:class:`NodeGroup` starts ``python -m lam_ros.nodes.<name> --ros-args -p ...`` processes
with their output in log files, and stops every one of them (SIGINT, then SIGKILL) when the
``with`` block ends, however it ends: success, an error or Ctrl-C. On Linux each child also
gets SIGINT if this process dies without cleaning up, so no node outlives the command.
:func:`ros_environment` puts the nodes on a private DDS domain unless the user chose one.
This module does not import rclpy: the command talks to its nodes only through them.
"""

import fcntl
import os
from pathlib import Path
import random
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

DOMAIN_LOCK_DIR = os.path.join(tempfile.gettempdir(), 'lam_ros_dds_domains')
DOMAINS = range(1, 102)  # the ids Linux's ephemeral port range leaves free for DDS
_domain: List[int] = []  # the domain this process holds (its lock file stays open)


def ros_environment() -> Dict[str, str]:
    """
    Return the environment for the nodes: this one, on a private DDS domain by default.

    A ``ROS_DOMAIN_ID`` the user set is kept. Otherwise a domain no other lam_ros process
    on this host holds is taken (a lock file held until this process ends) and discovery
    stays on this host, so the nodes neither see nor disturb another ROS system.
    """
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    if env.get('ROS_DOMAIN_ID', '').strip():
        return env
    env['ROS_DOMAIN_ID'] = str(_claim_domain())
    env.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    return env


def _claim_domain() -> int:
    if not _domain:
        _domain.append(lock_free_domain()[0])
    return _domain[0]


def lock_free_domain() -> Tuple[int, int]:
    """
    Return ``(domain id, lock fd)`` of a DDS domain no other lam_ros process on this host holds.

    The domain is held through an exclusive lock on ``DOMAIN_LOCK_DIR/<id>.lock`` until the fd
    is closed; the kernel frees it when the process ends, however it ends.
    """
    os.makedirs(DOMAIN_LOCK_DIR, exist_ok=True)
    start = random.randrange(len(DOMAINS))
    for k in range(len(DOMAINS)):
        domain = DOMAINS[(start + k) % len(DOMAINS)]
        fd = os.open(os.path.join(DOMAIN_LOCK_DIR, f'{domain}.lock'), os.O_CREAT | os.O_RDWR,
                     0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        return domain, fd
    raise RuntimeError(f'every DDS domain {DOMAINS.start}..{DOMAINS.stop - 1} is in use; set '
                       'ROS_DOMAIN_ID yourself')


def _ros_value(value: Any) -> str:
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, str):
        return value if value else "''"
    return repr(value)


def _child_setup() -> None:
    """
    In the child, before exec: SIGINT stops it, also when this process dies (Linux).

    A command started in the background by a shell ignores SIGINT, and its children would
    inherit that; the nodes must stop on SIGINT whatever started this command.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGINT)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class NodeFailed(RuntimeError):
    """A node ended on its own, or did not finish in time; the message names its log."""


class NodeGroup:
    """Node processes started together and always stopped together (a context manager)."""

    def __init__(self, log_dir: str, env: Optional[Dict[str, str]] = None,
                 stop_timeout_s: float = 20.0) -> None:
        """Write each node's output to ``log_dir/<name>.log``; ``env`` defaults to ours."""
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.env = dict(env if env is not None else os.environ)
        root = str(Path(__file__).resolve().parents[2])  # this lam_ros, also from a checkout
        self.env['PYTHONPATH'] = os.pathsep.join(
            p for p in (root, self.env.get('PYTHONPATH', '')) if p)
        self.stop_timeout_s = stop_timeout_s
        self.procs: Dict[str, subprocess.Popen] = {}

    def __enter__(self) -> 'NodeGroup':
        """Return the group."""
        return self

    def __exit__(self, *_exc: Any) -> None:
        """Stop every node."""
        self.stop_all()

    def log(self, name: str) -> Path:
        """Return the log file of node ``name``."""
        return self.log_dir / f'{name}.log'

    def start(self, name: str, params: Dict[str, Any]) -> subprocess.Popen:
        """Start ``lam_ros.nodes.<name>`` with ROS parameters ``params``."""
        args = [sys.executable, '-m', f'lam_ros.nodes.{name}', '--ros-args']
        for key, value in params.items():
            args += ['-p', f'{key}:={_ros_value(value)}']
        with open(self.log(name), 'ab') as log:
            self.procs[name] = subprocess.Popen(
                args, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_child_setup if sys.platform.startswith('linux') else None)
        return self.procs[name]

    def tail(self, name: str, lines: int = 15) -> str:
        """Return the last ``lines`` lines of a node's log."""
        try:
            text = self.log(name).read_text(errors='replace').splitlines()
        except OSError:
            return ''
        return '\n'.join(text[-lines:])

    def check_alive(self, except_name: str = '') -> None:
        """Raise NodeFailed naming the first node that ended by itself (but ``except_name``)."""
        for name, proc in self.procs.items():
            if name != except_name and proc.poll() is not None:
                raise NodeFailed(f'{name} stopped with status {proc.returncode}; its log '
                                 f'{self.log(name)} ends with:\n{self.tail(name)}')

    def wait(self, name: str, limit_s: float, poll: Optional[Callable[[], None]] = None,
             interval_s: float = 0.5) -> int:
        """
        Wait for node ``name`` to exit by itself, calling ``poll()`` meanwhile; return 0.

        Raises NodeFailed when it exits with an error, when another node stops first, or
        after ``limit_s`` wall seconds.
        """
        proc = self.procs[name]
        end = time.monotonic() + limit_s
        while proc.poll() is None:
            if poll is not None:
                poll()
            self.check_alive(except_name=name)
            if time.monotonic() > end:
                raise NodeFailed(f'{name} did not finish within {limit_s:.0f} s; its log '
                                 f'{self.log(name)} ends with:\n{self.tail(name)}')
            time.sleep(interval_s)
        if poll is not None:
            poll()
        if proc.returncode != 0:
            raise NodeFailed(f'{name} exited with status {proc.returncode}; its log '
                             f'{self.log(name)} ends with:\n{self.tail(name)}')
        return 0

    def stop_all(self) -> Dict[str, int]:
        """SIGINT every running node, SIGKILL those still up after the timeout; return codes."""
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    proc.send_signal(signal.SIGINT)
                except ProcessLookupError:
                    pass
        end = time.monotonic() + self.stop_timeout_s
        codes = {}
        try:
            for name, proc in self.procs.items():
                try:
                    proc.wait(max(0.1, end - time.monotonic()))
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                codes[name] = proc.returncode
        finally:  # a second Ctrl-C while waiting: kill what is left, then give up waiting
            for proc in self.procs.values():
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            self.procs.clear()
        return codes
