"""``lam-ros dataset replay`` over real DDS: recorded commands republished at their timing."""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip('rclpy')

from lam_ros.data import messages as m  # noqa: E402, I100
from lam_ros.data.bags.writer import write_bag  # noqa: E402
from lam_ros.nodes.common import MSG  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Float64MultiArray  # noqa: E402
from trajectory_msgs.msg import JointTrajectory  # noqa: E402

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


def test_replay_with_no_robot_listening_says_so_once(probe, tmp_path):
    write_episode(tmp_path / 'ep')
    rc, out = run_replay(probe, tmp_path / 'ep', '--no-state-check')
    assert rc == 1, out
    assert out.count('no subscriber on the command topic') == 1, out
    assert 'Traceback' not in out


def test_a_bag_without_a_recorded_scene_replays_with_a_warning(probe, tmp_path):
    write_episode(tmp_path / 'ep')
    probe.node.create_subscription(Float64MultiArray, CMD, lambda _msg: None, 100)
    rc, out = run_replay(probe, tmp_path / 'ep', state=command(0))
    assert rc == 0, out
    assert 'ep has no recorded scene' in out and 'scene not restored' in out, out
    # The bag's arm stood still at the first command, and so did the probe's.
    assert 'tracking error vs the recording: RMS 0.0000, max 0.0000' in out, out


def test_replay_in_a_fresh_sim_node_restores_the_scene_and_grasps_again(probe, tmp_path):
    """A recorded lift demo (seed 7) replayed into a sim_node started at seed 0 lifts the cube."""
    from lam_ros.data.recording.demos import DemoConfig, record_demos
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from std_msgs.msg import Bool, String
    import yaml

    from .ros_harness import NodeProcess
    demos = tmp_path / 'demos'
    summary = record_demos(DemoConfig(task='lift', episodes=1, seed=7), demos)
    assert summary['successes'] == 1
    index = yaml.safe_load((demos / 'dataset.yaml').read_text())
    scene = index['episodes'][0]['scene']
    assert scene['seed'] == 7 and len(scene['object_pose']) == 7
    scenes, success = [], []
    latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
    probe.node.create_subscription(String, '/sim_node/scene',
                                   lambda msg: scenes.append(json.loads(msg.data)), latched)
    sim = NodeProcess('sim_node', {'task': 'lift', 'seed': 0})
    try:
        assert probe.spin_until(lambda: scenes, 30.0), sim.output()
        assert scenes[-1]['seed'] == 0 and scenes[-1]['object_pose'] != scene['object_pose']
        probe.node.create_subscription(Bool, '/task_success',
                                       lambda msg: success.append(msg.data), 10)
        rc, out = run_replay(probe, demos, timeout_s=90.0, command=[
            '-m', 'lam_ros.cli', 'dataset', 'replay', str(demos), '--episode',
            'episode_000000'])
        assert rc == 0, out + sim.output()
        assert 'scene restored (seed 7)' in out, out
        assert scenes[-1]['seed'] == 7
        np.testing.assert_allclose(scenes[-1]['object_pose'], scene['object_pose'], atol=1e-5)
        rms = float(out.split('tracking error vs the recording: RMS ')[1].split(',')[0])
        assert rms < 0.05, out
        assert any(success), 'the replay did not lift the cube again'
    finally:
        sim.stop()


def test_replay_without_a_simulator_warns_that_the_scene_is_not_restored(probe, tmp_path):
    from lam_ros.data.recording.demos import DemoConfig, record_demos
    demos = tmp_path / 'demos'
    record_demos(DemoConfig(task='lift', episodes=1, seed=3), demos)
    probe.node.create_subscription(Float64MultiArray, CMD, lambda _msg: None, 100)
    rc, out = run_replay(probe, demos, '--no-state-check', '--speed', '4', command=[
        '-m', 'lam_ros.cli', 'dataset', 'replay', str(demos), '--episode', 'episode_000000',
        '--no-state-check', '--speed', '4'])
    assert rc == 0, out
    assert 'no simulator at /sim_node to restore the recorded scene (a real robot?)' in out
    assert 'the object started at [' in out and 'scene not restored' in out


def test_a_mistyped_episode_names_the_closest(probe, tmp_path):
    from lam_ros.data.recording.demos import DemoConfig, record_demos
    demos = tmp_path / 'demos'
    record_demos(DemoConfig(task='lift', episodes=2, seed=0), demos)
    rc, out = run_replay(probe, demos, command=[
        '-m', 'lam_ros.cli', 'dataset', 'replay', str(demos), '--episode', 'episode_1'])
    assert rc == 2
    assert out.strip() == (f"error: no episode 'episode_1' in {demos}; closest: "
                           'episode_000001 (2 episodes)')
