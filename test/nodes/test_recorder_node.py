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
import yaml  # noqa: E402

from lam_ros.data import messages  # noqa: E402
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


@pytest.fixture
def session(tmp_path: Path):
    isolate_dds()
    probe = Probe('recorder_test_probe')
    node = RecorderNode(context=probe.context, parameter_overrides=[
        Parameter('output_dir', value=str(tmp_path / 'ds')),
        Parameter('topics', value=['/joint_states', '/task_success']),
        Parameter('topic_types', value=[messages.JOINT_STATE, messages.BOOL]),
        Parameter('flush_interval_s', value=0.2)])
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
    pubs.publish_for(0.5)  # discovery; nothing is recorded while idle
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
