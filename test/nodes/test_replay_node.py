"""``lam-ros dataset replay`` over real DDS: recorded commands republished at their timing."""

import os
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip('rclpy')

from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Float64MultiArray  # noqa: E402
from trajectory_msgs.msg import JointTrajectory  # noqa: E402

from lam_ros.data import messages as m  # noqa: E402, I100
from lam_ros.data.bags.writer import write_bag  # noqa: E402
from lam_ros.nodes.common import MSG  # noqa: E402

from .ros_harness import isolate_dds, Probe, ROOT  # noqa: E402

JOINTS = [f'panda_joint{i}' for i in range(1, 8)] + ['panda_finger_joint1']
CMD = '/forward_position_controller/commands'
BASE_NS = 1_764_400_000 * 10**9
N_CMD = 15


def command(i):
    """Command i (10 Hz): small steps from a start pose, so the start check can pass."""
    return 0.1 * np.arange(8) + 0.001 * i


def write_episode(path):
    """Write a bag with 100 Hz joint states and 15 commands at 10 Hz (1.4 s)."""
    records = []
    for k in range(151):
        stamp = BASE_NS + k * 10_000_000
        records.append(('/joint_states', m.JOINT_STATE, stamp,
                        m.joint_state(stamp, JOINTS, command(0))))
    for i in range(N_CMD):
        stamp = BASE_NS + 5_000_000 + i * 100_000_000
        records.append((CMD, m.FLOAT64_ARRAY, stamp, m.float64_array(command(i))))
    return write_bag(path, records)


def run_replay(probe, bags, *args, state=None, timeout_s=60.0, command=None):
    """Run the CLI replay (or ``command``) in a subprocess while the probe spins."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''),
               PYTHONUNBUFFERED='1')
    command = command or ['-m', 'lam_ros.cli', 'dataset', 'replay', str(bags), '--episode',
                          'ep', *args]
    proc = subprocess.Popen([sys.executable, *command], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    pub = probe.node.create_publisher(JointState, '/joint_states', 10)
    end = time.monotonic() + timeout_s
    while proc.poll() is None and time.monotonic() < end:
        if state is not None:
            stamp_ns = probe.node.get_clock().now().nanoseconds
            pub.publish(MSG.joint_state(stamp_ns, JOINTS + ['panda_finger_joint2'],
                                        list(state) + [0.0], [0.0] * 9, [0.0] * 9))
        probe.spin_for(0.02)
    if proc.poll() is None:
        proc.kill()
    return proc.wait(), proc.stdout.read()


@pytest.fixture
def probe():
    """Yield a probe node in an isolated DDS domain."""
    isolate_dds()
    p = Probe('replay_probe')
    yield p
    p.close()


def test_replay_republishes_commands_at_their_timing(probe, tmp_path):
    write_episode(tmp_path / 'ep')
    received = []
    probe.node.create_subscription(Float64MultiArray, CMD,
                                   lambda msg: received.append((time.monotonic(), msg)), 100)
    rc, out = run_replay(probe, tmp_path / 'ep', '--no-state-check')
    assert rc == 0, out
    assert f'replayed {N_CMD} commands' in out
    assert len(received) == N_CMD, out
    for i, (_, msg) in enumerate(received):
        np.testing.assert_allclose(msg.data, command(i))
    # Never faster than recorded (a load can only make it later): 14 gaps of 0.1 s.
    gaps = np.diff([t for t, _ in received])
    assert np.median(gaps) > 0.08, gaps
    assert received[-1][0] - received[0][0] > 1.4 - 0.2  # less delivery jitter


def test_replay_refuses_to_start_far_from_the_first_command(probe, tmp_path):
    write_episode(tmp_path / 'ep')
    received = []
    probe.node.create_subscription(Float64MultiArray, CMD, received.append, 100)
    far = command(0) + np.array([0, 0, 0.5, 0, 0, 0, 0, 0])
    rc, out = run_replay(probe, tmp_path / 'ep', state=far)
    assert rc == 1 and 'panda_joint3 is 0.500 from the first command' in out, out
    assert not received


def test_replay_as_joint_trajectory_at_double_speed(probe, tmp_path):
    write_episode(tmp_path / 'ep')
    received = []
    topic = '/joint_trajectory_controller/joint_trajectory'
    probe.node.create_subscription(JointTrajectory, topic,
                                   lambda msg: received.append((time.monotonic(), msg)), 100)
    rc, out = run_replay(probe, tmp_path / 'ep', '--interface', 'trajectory', '--topic', topic,
                         '--speed', '2', state=command(0) + 0.01)
    assert rc == 0, out
    assert len(received) == N_CMD
    msg = received[-1][1]
    assert list(msg.joint_names) == JOINTS
    np.testing.assert_allclose(msg.points[0].positions, command(N_CMD - 1))
    # Each point takes one command period at the replay speed.
    assert msg.points[0].time_from_start.nanosec == pytest.approx(50_000_000, abs=1_000_000)
    assert received[-1][0] - received[0][0] > 0.7 - 0.2


def test_replay_node_takes_the_episode_as_parameters(probe, tmp_path):
    write_episode(tmp_path / 'ep')
    received = []
    probe.node.create_subscription(Float64MultiArray, CMD, received.append, 100)
    rc, out = run_replay(probe, None, state=command(0), command=[
        '-m', 'lam_ros.nodes.replay_node', '--ros-args', '-p', f'source:={tmp_path / "ep"}',
        '-p', 'episode:=ep', '-p', 'speed:=4.0'])
    assert rc == 0, out
    assert len(received) == N_CMD
    rc, out = run_replay(probe, None, command=['-m', 'lam_ros.nodes.replay_node'])
    assert rc == 1 and 'set the source and episode parameters' in out, out
