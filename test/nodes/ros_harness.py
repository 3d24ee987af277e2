"""Helpers for node tests: an isolated DDS domain, node subprocesses and a probe node."""

import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, List, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def isolate_dds() -> int:
    """Pick a random domain and keep discovery on this host; return the domain id."""
    domain = random.randint(1, 200)
    os.environ['ROS_DOMAIN_ID'] = str(domain)
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    return domain


def _ros_value(value) -> str:
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, (list, tuple)):
        return '[' + ','.join(_ros_value(v) for v in value) + ']'
    if isinstance(value, str):
        return value if value else "''"
    return repr(value)


class NodeProcess:
    """A lam_ros node run as ``python -m lam_ros.nodes.<name>`` with parameters."""

    def __init__(self, name: str, params: Optional[Dict] = None,
                 extra_args: Optional[List[str]] = None) -> None:
        """Start the node; its output goes to a temporary log file."""
        args = [sys.executable, '-m', f'lam_ros.nodes.{name}', '--ros-args']
        for key, value in (params or {}).items():
            args += ['-p', f'{key}:={_ros_value(value)}']
        args += extra_args or []
        self.log = tempfile.NamedTemporaryFile('w+', prefix=f'{name}_', suffix='.log',
                                               delete=False)
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''),
                   PYTHONUNBUFFERED='1')
        self.proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)

    def output(self) -> str:
        """Return what the node printed so far."""
        with open(self.log.name) as f:
            return f.read()

    def stop(self, timeout_s: float = 5.0) -> int:
        """Stop with one SIGINT, then SIGKILL after ``timeout_s``; return the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout_s)
        self.log.close()
        return self.proc.returncode


class Probe:
    """An in-process rclpy node with its own context, for talking to nodes under test."""

    def __init__(self, name: str = 'probe') -> None:
        """Initialise rclpy in a fresh context (after isolate_dds) and create the node."""
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def spin_for(self, seconds: float) -> None:
        """Process callbacks for ``seconds``."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=min(0.05, max(0.0, end - time.monotonic())))

    def spin_until(self, condition: Callable[[], bool], timeout_s: float) -> bool:
        """Process callbacks until ``condition()`` holds; return whether it did in time."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if condition():
                return True
            self.executor.spin_once(timeout_sec=0.05)
        return condition()

    def call(self, srv_type, name: str, timeout_s: float = 10.0):
        """Call a service with an empty request and return the response."""
        client = self.node.create_client(srv_type, name)
        if not self.spin_until(client.service_is_ready, timeout_s):
            raise TimeoutError(f'service {name} did not appear within {timeout_s} s')
        future = client.call_async(srv_type.Request())
        if not self.spin_until(future.done, timeout_s):
            raise TimeoutError(f'service {name} did not answer within {timeout_s} s')
        self.node.destroy_client(client)
        return future.result()

    def close(self) -> None:
        """Destroy the node and shut the context down."""
        self.executor.shutdown()
        self.node.destroy_node()
        self.context.try_shutdown()
