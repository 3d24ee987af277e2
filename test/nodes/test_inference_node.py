"""inference_node over real DDS: enable, stale state, wrong joints, bad checkpoints."""

import time

from lam_ros.policy import PolicyConfig, save_checkpoint, TransformerPolicy
from lam_ros.sim.robot import ALL_JOINT_NAMES, HOME_JOINT_POS, JOINT_NAMES
import numpy as np
import pytest

from .ros_harness import isolate_dds, NodeProcess, Probe

# Message packages are imported where used: without rclpy the module still collects and skips.
pytest.importorskip('rclpy')

CMD = '/forward_position_controller/commands'
HOME9 = list(HOME_JOINT_POS) + [HOME_JOINT_POS[7]]
# Far from the untrained policy's targets (near 0): the arm keeps moving for over a second.
FAR9 = [-2.8, -0.785, 0.0, -3.0] + HOME9[4:]


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    """Save an untrained joint-state policy for the Panda (its targets lie far from home)."""
    config = PolicyConfig(joint_names=JOINT_NAMES, obs_spec={'joint_pos': (8,),
                                                             'gripper_width': (1,)},
                          chunk_size=5, d_model=16, n_heads=2, n_layers=1)
    path = tmp_path_factory.mktemp('inference') / 'policy'
    save_checkpoint(path, TransformerPolicy(config))
    return str(path)


@pytest.fixture
def probe():
    isolate_dds()
    probe = Probe('inference_probe')
    yield probe
    probe.close()


class Arm:
    """Publishes joint states at 100 Hz while the probe spins; records commands with times."""

    def __init__(self, probe, names=ALL_JOINT_NAMES, position=HOME9, trajectory=False):
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Float64MultiArray
        from trajectory_msgs.msg import JointTrajectory
        self.probe, self.names, self.position = probe, list(names), list(position)
        self.publishing = True
        self.last_state_s = None
        self.commands = []
        node = probe.node
        self.pub = node.create_publisher(JointState, '/joint_states', 10)
        if trajectory:
            node.create_subscription(JointTrajectory,
                                     '/joint_trajectory_controller/joint_trajectory',
                                     self._on_trajectory, 10)
        else:
            node.create_subscription(Float64MultiArray, CMD, self._on_command, 10)
        node.create_timer(0.01, self._publish)

    def _publish(self):
        from lam_ros.nodes.common import MSG
        if self.publishing:
            stamp_ns = self.probe.node.get_clock().now().nanoseconds
            n = len(self.names)
            self.pub.publish(MSG.joint_state(stamp_ns, self.names, self.position, [0.0] * n,
                                             [0.0] * n))
            self.last_state_s = time.monotonic()

    def _on_command(self, msg):
        self.commands.append((time.monotonic(), np.array(msg.data)))

    def _on_trajectory(self, msg):
        self.joint_names = list(msg.joint_names)
        self.commands.append((time.monotonic(), np.array(msg.points[0].positions)))


def set_enabled(probe, value, timeout_s=20.0):
    from std_srvs.srv import SetBool
    client = probe.node.create_client(SetBool, '/inference_node/enable')
    assert probe.spin_until(client.service_is_ready, timeout_s), 'no ~/enable service'
    future = client.call_async(SetBool.Request(data=value))
    assert probe.spin_until(future.done, 5.0)
    return future.result()


def test_disabled_publishes_nothing_enable_starts_at_the_arm_and_disable_holds(probe,
                                                                               checkpoint):
    arm = Arm(probe)
    node = NodeProcess('inference_node', {'checkpoint': checkpoint})
    try:
        set_enabled(probe, False)  # waits until the node is up; disabling twice is harmless
        arm.commands.clear()
        probe.spin_for(1.0)
        assert arm.commands == [], 'a disabled node published commands'
        assert 'enabled' in set_enabled(probe, True).message
        assert probe.spin_until(lambda: len(arm.commands) >= 20, 10.0)
        # The first command starts from the arm's position: at most one tick's step away.
        assert np.all(np.abs(arm.commands[0][1] - HOME_JOINT_POS) <= 2.62 / 100 + 1e-9)
        assert not np.allclose(arm.commands[-1][1], HOME_JOINT_POS), 'the policy never moved'
        steps = np.abs(np.diff([c for _, c in arm.commands], axis=0))
        assert steps.max() <= 2.62 / 100 + 1e-9  # the fastest Panda joint, per 100 Hz tick
        set_enabled(probe, False)
        probe.spin_for(0.2)
        count, hold = len(arm.commands), arm.commands[-1][1]
        probe.spin_for(0.5)
        assert len(arm.commands) == count, 'published after disable'
        assert np.all(np.abs(hold - arm.commands[-2][1]) <= 2.62 / 100 + 1e-9)
    finally:
        assert node.stop() == 0, node.output()


TIMEOUT_S = 0.1


def test_stale_joint_states_hold_within_two_control_periods(probe, checkpoint):
    arm = Arm(probe, position=FAR9, trajectory=True)
    node = NodeProcess('inference_node', {'checkpoint': checkpoint, 'autostart': True,
                                          'state_timeout_s': TIMEOUT_S,
                                          'command_interface': 'trajectory'})
    try:
        assert probe.spin_until(lambda: len(arm.commands) >= 20, 20.0), node.output()
        assert arm.joint_names == list(JOINT_NAMES)
        arm.publishing = False
        stopped = arm.last_state_s
        probe.spin_for(0.6)
        # Stale from stopped + 0.1 s; hold by two 10 ms ticks later (plus DDS delivery).
        after = [c for t, c in arm.commands if t > stopped + 0.1 + 0.02 + 0.03]
        before = [c for t, c in arm.commands if t <= stopped]
        assert len(after) >= 20, 'the node should keep publishing the hold'
        assert not np.allclose(before[-1], before[-10]), 'the arm was not moving before'
        for command in after:
            np.testing.assert_array_equal(command, after[0])
    finally:
        assert node.stop() == 0, node.output()


def test_wrong_joint_names_log_a_clear_error_and_publish_nothing(probe, checkpoint):
    names = [f'ur_joint{i}' for i in range(9)]
    arm = Arm(probe, names=names)
    node = NodeProcess('inference_node', {'checkpoint': checkpoint, 'autostart': True})
    try:
        assert probe.spin_until(lambda: 'lacks' in node.output(), 20.0), node.output()
        probe.spin_for(1.0)
        assert arm.commands == []
        line = next(x for x in node.output().splitlines() if 'lacks' in x)
        assert 'ur_joint0' in line and 'panda_joint1' in line and 'ERROR' in line
    finally:
        assert node.stop() == 0, node.output()


@pytest.mark.parametrize('damage', ['missing', 'corrupt'])
def test_bad_checkpoint_is_one_error_line_and_exit_1(checkpoint, tmp_path, damage):
    isolate_dds()
    path = tmp_path / 'policy'
    if damage == 'corrupt':
        import shutil
        shutil.copytree(checkpoint, path)
        weights = path / 'model.safetensors'
        weights.write_bytes(weights.read_bytes()[:-64])
    node = NodeProcess('inference_node', {'checkpoint': str(path)})
    try:
        node.proc.wait(60.0)
    finally:
        code = node.stop()
    lines = [x for x in node.output().splitlines() if x.strip()]
    assert code == 1 and len(lines) == 1, node.output()
    assert lines[0].startswith('inference_node: cannot load checkpoint')
    assert ('no checkpoint directory' if damage == 'missing' else 'checksum') in lines[0]


CAMERA_SPEC = {'joint_pos': (8,), 'object_pose': (7,), 'scene_rgb': (16, 16, 3),
               'wrist_rgb': (16, 16, 3), 'wrist_depth': (16, 16, 1)}


@pytest.fixture(scope='module')
def camera_checkpoint(tmp_path_factory):
    """Save an untrained policy on joints, the object pose and two cameras (wrist depth)."""
    config = PolicyConfig(joint_names=JOINT_NAMES, obs_spec=CAMERA_SPEC, chunk_size=5,
                          d_model=16, n_heads=2, n_layers=1, image_channels=(4, 4))
    path = tmp_path_factory.mktemp('inference_cameras') / 'policy'
    save_checkpoint(path, TransformerPolicy(config))
    return str(path)


class Cameras:
    """Publish the object pose and both cameras' frames at 20 Hz on the robot's topics."""

    def __init__(self, probe, wrist_encoding='rgb8', wrist_depth_ok=True):
        from geometry_msgs.msg import PoseStamped
        from sensor_msgs.msg import Image
        self.probe, self.wrist_encoding, self.wrist_depth_ok = probe, wrist_encoding, \
            wrist_depth_ok
        node = probe.node
        self.pose_pub = node.create_publisher(PoseStamped, '/object_pose', 10)
        self.pubs = {topic: node.create_publisher(Image, topic, 10) for topic in (
            '/scene_camera/image_raw', '/wrist_camera/image_raw',
            '/wrist_camera/depth/image_raw')}
        node.create_timer(0.05, self._publish)

    def _publish(self):
        from lam_ros.nodes.common import MSG
        stamp_ns = self.probe.node.get_clock().now().nanoseconds
        self.pose_pub.publish(MSG.pose_stamped(stamp_ns, 'panda_link0',
                                               [0.5, 0.0, 0.02, 1.0, 0.0, 0.0, 0.0]))
        # The scene camera sends 32x24 bgr8: converted and resized to the policy's 16x16.
        self.pubs['/scene_camera/image_raw'].publish(MSG.image(
            stamp_ns, 'scene_camera_optical_frame', np.full((24, 32, 3), 100, np.uint8),
            'bgr8'))
        wrist = np.full((16, 16, 3 if self.wrist_encoding == 'rgb8' else 1), 7,
                        np.uint8 if self.wrist_encoding == 'rgb8' else np.uint16)
        self.pubs['/wrist_camera/image_raw'].publish(MSG.image(
            stamp_ns, 'wrist_camera_optical_frame', wrist, self.wrist_encoding))
        depth = MSG.image(stamp_ns, 'wrist_camera_optical_frame',
                          np.full((20, 20, 1), 350, np.uint16), '16UC1')
        if not self.wrist_depth_ok:  # a frame whose data does not fill its rows
            depth.data = bytes(depth.data)[:-40]
        self.pubs['/wrist_camera/depth/image_raw'].publish(depth)


def _figures(stats):
    return {kv.key: kv.value for kv in stats[-1].status[0].values} if stats else {}


def test_a_two_camera_policy_runs_on_sensor_msgs_images(probe, camera_checkpoint):
    """Scene bgr8 32x24 and wrist rgb8 + 16UC1 depth 20x20 reach a 16x16 two-camera policy."""
    import json

    from diagnostic_msgs.msg import DiagnosticArray
    arm = Arm(probe)
    Cameras(probe)
    stats = []
    probe.node.create_subscription(DiagnosticArray, '/inference_node/stats', stats.append, 10)
    node = NodeProcess('inference_node', {'checkpoint': camera_checkpoint, 'autostart': True,
                                          'stats_rate_hz': 5.0})
    try:
        assert probe.spin_until(lambda: int(_figures(stats).get('policy_calls', 0)) >= 5,
                                60.0), node.output()
        figures = _figures(stats)
        assert json.loads(figures['policy_errors']) == 0
        assert figures['observation_error'] == '', figures['observation_error']
        assert probe.spin_until(lambda: len(arm.commands) >= 20, 10.0), 'no commands published'
        assert not np.allclose(arm.commands[-1][1], HOME_JOINT_POS), 'the policy never moved'
    finally:
        assert node.stop() == 0, node.output()


@pytest.mark.parametrize('fault', ['encoding', 'malformed'])
def test_a_bad_camera_frame_is_one_clear_error_and_no_policy_command(probe, camera_checkpoint,
                                                                     fault):
    """A wrist frame in a wrong encoding, or one that cannot be read: the arm only holds."""
    from diagnostic_msgs.msg import DiagnosticArray
    arm = Arm(probe)
    Cameras(probe, wrist_encoding='16UC1' if fault == 'encoding' else 'rgb8',
            wrist_depth_ok=fault != 'malformed')
    stats = []
    probe.node.create_subscription(DiagnosticArray, '/inference_node/stats', stats.append, 10)
    node = NodeProcess('inference_node', {'checkpoint': camera_checkpoint, 'autostart': True,
                                          'stats_rate_hz': 5.0})
    key, words = ('wrist_rgb', 'colour images must be rgb8') if fault == 'encoding' else (
        'wrist_depth', 'malformed 20x20 16UC1 image')
    try:
        assert probe.spin_until(lambda: words in _figures(stats).get('observation_error', ''),
                                60.0), node.output()
        probe.spin_for(1.0)
        figures = _figures(stats)
        assert figures['policy_calls'] == '0' and key in figures['observation_error']
        assert 'no fresh' in figures['gate_reason'] or figures['gate_reason'] == 'no target'
        # Whatever was published is the gate's hold of the measured position.
        for _, command in arm.commands:
            np.testing.assert_allclose(command, HOME_JOINT_POS, atol=1e-9)
        errors = [x for x in node.output().splitlines() if words in x]
        assert errors and 'ERROR' in errors[0] and '/wrist_camera/' in errors[0], node.output()
        assert 'the policy waits, commands hold' in errors[0]
    finally:
        assert node.stop() == 0, node.output()
