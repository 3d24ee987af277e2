"""A failure raised while SIGINT shuts the context down counts as that shutdown."""

import sys
import threading
import types

# run.py is loaded through common (which re-exports it), as every node does.
from lam_ros.nodes import common  # noqa: F401, I100
from lam_ros.nodes.run import _shutdown_follows, quiet_task_teardown
import rclpy
from rclpy.context import Context


def test_shutdown_follows_waits_for_a_shutdown_in_progress():
    """A live context is no shutdown; one shut down 0.1 s later is."""
    context = Context()
    rclpy.init(context=context)
    try:
        assert not _shutdown_follows(0.05, context), 'a live context is no shutdown'
        threading.Timer(0.1, context.shutdown).start()
        assert _shutdown_follows(2.0, context), 'a shutdown 0.1 s later should count'
        assert _shutdown_follows(0.0, context)
    finally:
        context.try_shutdown()


def test_only_rclpy_task_teardown_errors_are_silenced(monkeypatch):
    """The half-built Task's __del__ error is dropped; any other unraisable reaches Python."""
    passed_on = []
    monkeypatch.setattr(sys, '__unraisablehook__', passed_on.append)
    task_error = types.SimpleNamespace(
        exc_value=AttributeError("'Task' object has no attribute '_exception'"))
    other = types.SimpleNamespace(exc_value=AttributeError("'Node' object has no attribute 'x'"))
    quiet_task_teardown(task_error)
    quiet_task_teardown(other)
    assert passed_on == [other]


def test_sigusr1_prints_the_stacks_and_the_node_runs_on():
    import signal
    import time
    from .ros_harness import isolate_dds, NodeProcess
    isolate_dds()
    node = NodeProcess('sim_node', {'task': 'lift', 'real_time_factor': 1.0})
    try:
        deadline = time.monotonic() + 30.0
        while 'simulating lift' not in node.output() and time.monotonic() < deadline:
            time.sleep(0.1)
        node.proc.send_signal(signal.SIGUSR1)
        time.sleep(1.0)
        assert node.proc.poll() is None, node.output()
        assert 'Current thread' in node.output() and 'run.py' in node.output(), node.output()
    finally:
        code = node.stop()
    assert code == 0, node.output()
