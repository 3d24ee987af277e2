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


def test_pose_and_camera_observations_reach_the_policy(probe, tmp_path):
    """A policy on joints, object pose and a 16x16 camera; the camera sends 32x24 bgr8."""
    import json

    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import PoseStamped
    from lam_ros.nodes.common import MSG
    config = PolicyConfig(joint_names=JOINT_NAMES, obs_spec={
        'joint_pos': (8,), 'object_pose': (7,), 'scene_rgb': (16, 16, 3)}, chunk_size=5,
        d_model=16, n_heads=2, n_layers=1, image_channels=(4, 4))
    path = tmp_path / 'policy'
    save_checkpoint(path, TransformerPolicy(config))
    arm = Arm(probe)
    from sensor_msgs.msg import Image
    pose_pub = probe.node.create_publisher(PoseStamped, '/object_pose', 10)
    image_pub = probe.node.create_publisher(Image, '/camera/image_raw', 10)
    stats = []
    probe.node.create_subscription(DiagnosticArray, '/inference_node/stats', stats.append, 10)

    def observe():
        stamp_ns = probe.node.get_clock().now().nanoseconds
        pose_pub.publish(MSG.pose_stamped(stamp_ns, 'panda_link0',
                                          [0.5, 0.0, 0.02, 1.0, 0.0, 0.0, 0.0]))
        image_pub.publish(MSG.image(stamp_ns, 'camera', np.full((24, 32, 3), 100, np.uint8),
                                    'bgr8'))

    probe.node.create_timer(0.05, observe)
    node = NodeProcess('inference_node', {'checkpoint': str(path), 'autostart': True,
                                          'stats_rate_hz': 5.0})

    def figures():
        return {kv.key: kv.value for kv in stats[-1].status[0].values} if stats else {}
    try:
        assert probe.spin_until(lambda: int(figures().get('policy_calls', 0)) >= 5, 30.0), \
            node.output()
        assert json.loads(figures()['policy_errors']) == 0
        assert arm.commands, 'no commands published'
    finally:
        assert node.stop() == 0, node.output()
