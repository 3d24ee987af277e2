"""lam_ros.cli._nodes: node child processes, their domain, their failures and their stop."""

import signal
import time

from lam_ros.cli import _nodes
from lam_ros.cli._nodes import NodeFailed, NodeGroup, ros_environment
import pytest

pytest.importorskip('rclpy')


def _until(condition, timeout_s=90.0):
    end = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < end:
        time.sleep(0.2)
    return condition()


def test_a_users_domain_is_kept_else_a_private_one_is_taken(monkeypatch):
    monkeypatch.setenv('ROS_DOMAIN_ID', '7')
    assert ros_environment()['ROS_DOMAIN_ID'] == '7'
    monkeypatch.delenv('ROS_DOMAIN_ID')
    monkeypatch.delenv('ROS_AUTOMATIC_DISCOVERY_RANGE', raising=False)
    env = ros_environment()
    assert int(env['ROS_DOMAIN_ID']) in _nodes.DOMAINS
    assert env['ROS_AUTOMATIC_DISCOVERY_RANGE'] == 'LOCALHOST'
    assert ros_environment()['ROS_DOMAIN_ID'] == env['ROS_DOMAIN_ID']  # one per process


def test_nodes_stop_cleanly_on_sigint_also_when_the_command_ignores_it(tmp_path):
    """stop_all's SIGINT ends a node with status 0 (not killed), as a shell's background job."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with NodeGroup(str(tmp_path), ros_environment(), stop_timeout_s=60.0) as nodes:
            nodes.start('sim_node', {'task': 'lift'})
            assert _until(lambda: 'simulating lift' in nodes.tail('sim_node')), \
                nodes.tail('sim_node')
            codes = nodes.stop_all()
    finally:
        signal.signal(signal.SIGINT, previous)
    assert codes == {'sim_node': 0}, nodes.tail('sim_node')  # not killed: stopped by SIGINT


def test_a_node_that_fails_is_reported_with_its_log_and_the_others_stop(tmp_path):
    with pytest.raises(NodeFailed, match='real_time_factor must be >= 0'):
        with NodeGroup(str(tmp_path), ros_environment()) as nodes:
            # The runner waits for services no one offers; the sim fails at start-up.
            runner = nodes.start('demo_runner_node', {'service_timeout_s': 600.0})
            nodes.start('sim_node', {'real_time_factor': -1.0})
            nodes.wait('demo_runner_node', 300.0)
    assert runner.poll() is not None
