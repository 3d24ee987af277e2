"""Helpers for node tests: an isolated DDS domain, node subprocesses and a probe node."""

import os
import signal
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, List, Optional, Sequence

from lam_ros.cli._nodes import lock_free_domain

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_held: List[int] = []  # file descriptors of the domain locks this process holds


def claim_domain() -> int:
    """
    Return a DDS domain id no other process on this host holds, and hold it.

    Every test process (two suites run at once, CI beside a developer) takes its domain
    through lam_ros.cli._nodes.lock_free_domain (an exclusive lock the kernel frees when the
    process ends, however it ends). A process holds its last two domains, so that node
    processes of the test before still shutting down never share one with the next test.
    """
    domain, fd = lock_free_domain()
    _held.append(fd)
    while len(_held) > 2:
        os.close(_held.pop(0))
    return domain


def isolate_dds() -> int:
    """Claim a free domain and keep discovery on this host; return the domain id."""
    domain = claim_domain()
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
                 extra_args: Optional[List[str]] = None, start_new_session: bool = False) -> None:
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
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=start_new_session)

    def output(self) -> str:
        """Return what the node printed so far."""
        with open(self.log.name) as f:
            return f.read()

    def stop(self, timeout_s: float = 15.0) -> int:
        """
        Stop with one SIGINT, then SIGKILL after ``timeout_s``; return the exit code.

        The default is generous: on a loaded machine a node's DDS teardown has taken over 5 s.
        """
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                # Where it is stuck goes to its log (run_node dumps the stacks on SIGUSR1).
                self.proc.send_signal(signal.SIGUSR1)
                time.sleep(1.0)
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
        self._clients: dict = {}  # (service type, name) -> client, kept for later calls

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

    def call(self, srv_type, name: str, timeout_s: float = 10.0, request=None,
             resend_s: float = 0.0):
        """
        Call a service (with an empty request unless given one); return the response.

        A client sees the service as ready once its requests reach the server, which may be
        before the server can reach the client: an answer sent then is lost. So the call
        waits a moment after the service appears; ``resend_s`` > 0 also sends the request again
        every ``resend_s`` without an answer (only for services that may run twice, such as
        the parameter services).
        """
        client = self._clients.get((srv_type, name))
        if client is None:
            client = self._clients[(srv_type, name)] = self.node.create_client(srv_type, name)
        if not client.service_is_ready():
            if not self.spin_until(client.service_is_ready, timeout_s):
                raise TimeoutError(f'service {name} did not appear within {timeout_s} s')
            self.spin_for(0.2)
        end = time.monotonic() + timeout_s
        while True:
            future = client.call_async(request if request is not None else srv_type.Request())
            left = end - time.monotonic()
            if self.spin_until(future.done, min(left, resend_s) if resend_s > 0 else left):
                break
            if time.monotonic() >= end:
                raise TimeoutError(f'service {name} did not answer within {timeout_s} s')
        return future.result()

    def close(self) -> None:
        """Destroy the node and shut the context down."""
        self.executor.shutdown()
        self.node.destroy_node()
        self.context.try_shutdown()


# How each node executable starts idle: no operator, no recording, nobody to call.
STARTUP_ARGS = {
    'sim_node': [],
    'teleop_node': ['-p', 'source:=cartesian'],
    'recorder_node': ['-p', 'output_dir:={workdir}/dataset'],
    'demo_runner_node': ['-p', 'service_timeout_s:=600.0'],
}


def check_node_executables(executables: Sequence[str], workdir: str,
                           env: Optional[Dict[str, str]] = None,
                           timeout_s: float = 90.0) -> None:
    """
    Run installed node executables as ``ros2 run`` would, outside the source tree.

    Nodes of ``STARTUP_ARGS`` must appear in the ROS graph and end with status 0 on one
    SIGINT. Any other executable must either do the same or stop at once with a clean
    parameter error, no traceback (it then needs parameters this check cannot know: a
    checkpoint, a dataset, an episode to replay).
    """
    isolate_dds()
    env = dict(os.environ if env is None else env, PYTHONUNBUFFERED='1')
    env['ROS_DOMAIN_ID'] = os.environ['ROS_DOMAIN_ID']
    env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    procs = {}
    for exe in executables:
        name = os.path.basename(exe)
        args = [exe, '--ros-args'] + [a.format(workdir=workdir)
                                      for a in STARTUP_ARGS.get(name, [])]
        log = open(os.path.join(workdir, f'{name}.log'), 'w+')
        procs[name] = (subprocess.Popen(args, cwd=workdir, env=env, stdout=log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL),
                       log)

    def output(name: str) -> str:
        log = procs[name][1]
        log.flush()
        log.seek(0)
        return log.read()

    probe = Probe('executable_check')
    try:
        waiting = set(procs)
        end = time.monotonic() + timeout_s
        while waiting and time.monotonic() < end:
            seen = set(probe.node.get_node_names())
            waiting -= {n for n in waiting if n in seen or procs[n][0].poll() is not None}
            probe.spin_for(0.1)
        assert not waiting, f'never appeared in the ROS graph: {sorted(waiting)}\n' + \
            '\n'.join(output(n) for n in waiting)
    finally:
        probe.close()
        # One that printed its parameter error may still be on its way out (it may have shown
        # up in the graph first): let it exit on its own, not by the SIGINT below.
        for name, (proc, _) in procs.items():
            if name not in STARTUP_ARGS and proc.poll() is None and f'{name}: ' in output(name):
                try:
                    proc.wait(15.0)
                except subprocess.TimeoutExpired:
                    pass
        for proc, _ in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc, _ in procs.values():
            try:
                proc.wait(15.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    for name, (proc, log) in procs.items():
        text = output(name)
        log.close()
        assert 'Traceback' not in text, f'{name}:\n{text}'
        if name in STARTUP_ARGS or proc.returncode == 0:
            assert proc.returncode == 0, f'{name} exited {proc.returncode}:\n{text}'
        else:
            assert proc.returncode in (1, 2) and (f'{name}: ' in text or 'error' in text), \
                f'{name} exited {proc.returncode}:\n{text}'
