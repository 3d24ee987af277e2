"""recorder_node over real DDS: Trigger services, raw subscriptions, outcome, SIGINT."""

import json
from pathlib import Path
import time

import numpy as np
import pytest

pytest.importorskip('rclpy')

from rclpy.parameter import Parameter  # noqa: E402
from rosbags.highlevel import AnyReader  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Bool, Float64MultiArray, String  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402
import yaml  # noqa: E402, I100

from lam_ros.data import messages  # noqa: E402, I100
from lam_ros.nodes.recorder_node import RecorderNode  # noqa: E402

from .ros_harness import isolate_dds, NodeProcess, Probe  # noqa: E402

JOINTS9 = [f'panda_joint{i}' for i in range(1, 8)] + ['panda_finger_joint1',
                                                      'panda_finger_joint2']
CMD = '/forward_position_controller/commands'


def _read(bag: Path) -> dict:
    out = {}
    with AnyReader([bag], default_typestore=messages.TYPESTORE) as reader:
        for conn, stamp, raw in reader.messages():
            out.setdefault(conn.topic, []).append(
                (stamp, reader.deserialize(raw, conn.msgtype)))
    return out


class Publishers:
    """Test-side publishers of the robot topics."""

    def __init__(self, probe: Probe) -> None:
        node = probe.node
        self.probe = probe
        self.js = node.create_publisher(JointState, '/joint_states', 100)
        self.cmd = node.create_publisher(Float64MultiArray, CMD, 100)
        self.success = node.create_publisher(Bool, '/task_success', 10)
        self.sent = 0

    def publish_until_heard(self, timeout_s: float = 20.0, success: bool = None) -> None:
        """Publish until the recorder's status names no silent required topic."""
        statuses = []
        sub = self.probe.node.create_subscription(String, '/recorder_node/status',
                                                  statuses.append, 10)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not (
                statuses and not json.loads(statuses[-1].data)['silent_required_topics']):
            self.publish_for(0.1, success)
        self.probe.node.destroy_subscription(sub)
        self.publish_for(0.1, success)

    def publish_for(self, seconds: float, success: bool = None) -> None:
        """Publish joint states and commands at about 100 Hz; velocities left empty."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            msg = JointState(name=JOINTS9, position=[float(self.sent)] * 9)
            msg.header.stamp = self.probe.node.get_clock().now().to_msg()
            self.js.publish(msg)
            self.cmd.publish(Float64MultiArray(data=[float(self.sent)] * 8))
            self.sent += 1
            if success is not None:
                self.success.publish(Bool(data=success))
            self.probe.spin_for(0.01)


@pytest.fixture(params=['header', 'receipt'])
def session(tmp_path: Path, request):
    isolate_dds()
    probe = Probe('recorder_test_probe')
    node = RecorderNode(context=probe.context, parameter_overrides=[
        Parameter('log_time', value=request.param),
        Parameter('output_dir', value=str(tmp_path / 'ds')),
        Parameter('topics', value=['/joint_states', '/task_success']),
        Parameter('topic_types', value=[messages.JOINT_STATE, messages.BOOL]),
        Parameter('flush_interval_s', value=0.2), Parameter('start_wait_s', value=0.5)])
    probe.executor.add_node(node)
    statuses = []
    probe.node.create_subscription(String, '/recorder_node/status',
                                   lambda m: statuses.append(json.loads(m.data)), 10)
    yield probe, node, Publishers(probe), statuses, tmp_path / 'ds'
    node.close()
    probe.executor.remove_node(node)
    node.destroy_node()
    probe.close()


def test_services_record_episodes_over_dds(session) -> None:
    """Start/stop/discard over Trigger; bags hold the published messages and the outcome."""
    probe, node, pubs, statuses, out = session
    pubs.publish_until_heard()  # discovery; nothing is recorded while idle
    stop = probe.call(Trigger, '/recorder_node/stop_episode')
    assert not stop.success and 'start_episode' in stop.message
    assert probe.call(Trigger, '/recorder_node/start_episode').success
    again = probe.call(Trigger, '/recorder_node/start_episode')
    assert not again.success and 'stop or discard' in again.message
    first = pubs.sent
    pubs.publish_for(1.0, success=True)
    sent = pubs.sent - first
    probe.spin_for(0.3)
    res = probe.call(Trigger, '/recorder_node/stop_episode')
    assert res.success and 'episode_000000' in res.message and 'success=True' in res.message
    assert probe.call(Trigger, '/recorder_node/start_episode').success
    pubs.publish_for(0.2)
    assert probe.call(Trigger, '/recorder_node/discard_episode').success
    assert not probe.call(Trigger, '/recorder_node/discard_episode').success
    assert probe.spin_until(lambda: statuses and statuses[-1]['state'] == 'idle', 5.0)
    assert statuses[-1]['episodes_complete'] == 1

    index = yaml.safe_load((out / 'dataset.yaml').read_text())
    entry = index['episodes'][0]
    assert entry['status'] == 'complete' and entry['success'] is True
    assert index['episodes'][1]['status'] == 'discarded'
    assert index['topics']['command'] == CMD
    data = _read(out / 'episode_000000')
    states, cmds = data['/joint_states'], data[CMD]
    assert entry['message_counts']['/joint_states'] == len(states)
    if node.config.log_time == 'header':
        # The last state before the start opens the episode: the arm as the episode began.
        assert states[0][1].position[0] < first
        states = states[1:]
    # reliable local DDS: everything published while recording arrives
    assert sent - 2 <= len(states) <= sent and sent - 2 <= len(cmds) <= sent
    stamps = [s for s, _ in states]
    assert stamps == sorted(stamps)
    assert list(states[0][1].name) == JOINTS9 and states[0][1].velocity.size == 0
    values = [msg.position[0] for _, msg in states]
    assert values == sorted(values) and values[0] >= first
    np.testing.assert_array_equal(cmds[-1][1].data, np.full(8, cmds[-1][1].data[0]))
    assert data['/task_success'][-1][1].data is True
    # the bag holds strict CDR: rosbags' own strict deserialiser accepts every message
    with AnyReader([out / 'episode_000000'], default_typestore=messages.TYPESTORE) as reader:
        for conn, _, raw in reader.messages():
            messages.TYPESTORE.deserialize_cdr(raw, conn.msgtype)


def test_sigint_saves_open_episode_as_interrupted(tmp_path: Path) -> None:
    """A recorder process stopped with SIGINT mid-episode leaves a closed, readable bag."""
    isolate_dds()
    out = tmp_path / 'ds'
    proc = NodeProcess('recorder_node', {'output_dir': str(out)})
    probe = Probe('recorder_sigint_probe')
    try:
        pubs = Publishers(probe)
        start = probe.call(Trigger, '/recorder_node/start_episode', timeout_s=20)
        assert not start.success and '/joint_states (never heard)' in start.message
        pubs.publish_until_heard()
        assert probe.call(Trigger, '/recorder_node/start_episode', timeout_s=20).success
        pubs.publish_for(1.0)
        probe.spin_for(0.3)
    finally:
        probe.close()
        code = proc.stop()
    assert code == 0, proc.output()
    entry = yaml.safe_load((out / 'dataset.yaml').read_text())['episodes'][0]
    assert entry['status'] == 'interrupted' and entry['success'] is None
    assert len(_read(out / 'episode_000000')['/joint_states']) == \
        entry['message_counts']['/joint_states'] > 50


def test_params_file_matches_config_defaults(tmp_path: Path) -> None:
    """config/recorder.yaml loads and mirrors RecorderConfig's defaults."""
    import rclpy
    from rclpy.context import Context

    from lam_ros.data.recording.config import RecorderConfig
    isolate_dds()
    params = Path(__file__).resolve().parents[2] / 'config' / 'recorder.yaml'
    context = Context()
    rclpy.init(context=context, args=['--ros-args', '--params-file', str(params),
                                      '-p', f'output_dir:={tmp_path / "ds"}'])
    try:
        node = RecorderNode(context=context)
        expected = RecorderConfig(output_dir=str(tmp_path / 'ds')).resolved()
        assert node.config == expected
        node.close()
        node.destroy_node()
    finally:
        context.try_shutdown()


def test_output_dir_in_use_exits_with_clear_error(tmp_path: Path) -> None:
    """A second recorder on the same directory stops at start-up and says why."""
    from lam_ros.data.recording.recorder import DatasetRecorder
    isolate_dds()
    out = tmp_path / 'ds'
    with DatasetRecorder(out, 'panda', JOINTS9[:8], {'/joint_states': messages.JOINT_STATE},
                         {}, 'lift'):
        proc = NodeProcess('recorder_node', {'output_dir': str(out)})
        code = proc.proc.wait(timeout=30)
        text = proc.output()
        proc.stop()
    assert code == 1 and 'in use by another recorder' in text


def test_start_refuses_until_required_topics_are_heard(session) -> None:
    """No episode starts before the joint states arrive, nor after they go quiet."""
    probe, node, pubs, statuses, out = session
    refused = probe.call(Trigger, '/recorder_node/start_episode')
    assert not refused.success
    assert 'required topics are silent: /joint_states (never heard)' in refused.message
    pubs.publish_until_heard()
    assert probe.call(Trigger, '/recorder_node/start_episode').success
    pubs.publish_for(0.3)
    assert probe.call(Trigger, '/recorder_node/stop_episode').success
    probe.spin_for(1.3)  # the joint states stop: older than required_max_age_s (1 s)
    stale = probe.call(Trigger, '/recorder_node/start_episode')
    assert not stale.success and '/joint_states (silent for' in stale.message
    index = yaml.safe_load((out / 'dataset.yaml').read_text())
    assert [e['status'] for e in index['episodes']] == ['complete']
    assert 'warnings' not in index['episodes'][0]


def test_invalid_commands_and_missing_topics_flag_the_episode(tmp_path: Path) -> None:
    """Record NaN and wrong-length commands but flag them; flag a silent required topic too."""
    isolate_dds()
    probe = Probe('recorder_flag_probe')
    node = RecorderNode(context=probe.context, parameter_overrides=[
        Parameter('output_dir', value=str(tmp_path / 'ds')),
        Parameter('topics', value=['/joint_states', '/task_success']),
        Parameter('topic_types', value=[messages.JOINT_STATE, messages.BOOL]),
        Parameter('required_topics', value=['/joint_states', '/task_success']),
        Parameter('required_max_age_s', value=5.0)])
    probe.executor.add_node(node)
    try:
        pubs = Publishers(probe)
        pubs.publish_until_heard(success=False)
        assert probe.call(Trigger, '/recorder_node/start_episode').success
        pubs.publish_for(0.3)  # no /task_success in the episode itself
        pubs.cmd.publish(Float64MultiArray(data=[float('nan')] + [0.0] * 7))
        pubs.cmd.publish(Float64MultiArray(data=[1e308] * 5))
        pubs.publish_for(0.3)
        res = probe.call(Trigger, '/recorder_node/stop_episode')
    finally:
        node.close()
        probe.executor.remove_node(node)
        node.destroy_node()
        probe.close()
    assert res.success and 'WARNING: 2 of' in res.message, res.message
    entry = yaml.safe_load((tmp_path / 'ds' / 'dataset.yaml').read_text())['episodes'][0]
    first, missing = entry['warnings']
    assert "NaN/Inf for ['panda_joint1']" in first and '[nan, 0, 0' in first
    assert 'required topic /task_success has no messages' in missing
    assert entry['status'] == 'complete'
    assert len(res.message) < 400  # 1e308 is printed short, not as 309 digits
    data = _read(tmp_path / 'ds' / 'episode_000000')
    assert any(len(m.data) == 5 for _, m in data[CMD])  # recorded all the same


def test_sigkill_of_the_node_right_after_start_or_stop_leaves_readable_bags(tmp_path: Path):
    """Kill recorder_node in an episode's first 50 ms and right after a stop, then restart."""
    import random
    import signal
    isolate_dds()
    out = tmp_path / 'ds'
    rng = random.Random(3)
    probe = Probe('recorder_kill_probe')
    finished = []
    try:
        pubs = Publishers(probe)
        statuses = []
        probe.node.create_subscription(String, '/recorder_node/status', statuses.append, 10)
        for kind in ('first_50ms', 'after_stop', 'first_50ms', 'after_stop'):
            proc = NodeProcess('recorder_node', {'output_dir': str(out)})
            # A killed server can linger in discovery: wait for the new one's own status.
            statuses.clear()
            deadline = time.monotonic() + 30.0
            while time.monotonic() < deadline and not (
                    statuses and not json.loads(statuses[-1].data)['silent_required_topics']):
                pubs.publish_for(0.1)
            started = probe.call(Trigger, '/recorder_node/start_episode', timeout_s=30)
            assert started.success, started.message + proc.output()
            if kind == 'first_50ms':
                time.sleep(rng.uniform(0.0, 0.05))
            else:
                pubs.publish_for(0.3)
                stopped = probe.call(Trigger, '/recorder_node/stop_episode')
                assert stopped.success, stopped.message
                finished.append(stopped.message.split()[1].rstrip(':'))
            proc.proc.send_signal(signal.SIGKILL)
            proc.proc.wait(10)
            proc.stop()
    finally:
        probe.close()
    from lam_ros.data.recording.recorder import recover_dataset
    recover_dataset(out)
    index = yaml.safe_load((out / 'dataset.yaml').read_text())
    entries = {e['name']: e for e in index['episodes']}
    assert len(entries) == 4
    for name in finished:
        assert entries[name]['status'] == 'complete'
    for bag in out.glob('episode_*'):
        _read(bag)  # every episode directory opens with rosbags
    assert not list(out.glob('*.tmp')) and not (out / '.recovery').exists()
