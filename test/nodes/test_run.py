"""A failure raised while SIGINT shuts the context down counts as that shutdown."""

import threading

# run.py is loaded through common (which re-exports it), as every node does.
from lam_ros.nodes import common  # noqa: F401, I100
from lam_ros.nodes.run import _shutdown_follows
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
