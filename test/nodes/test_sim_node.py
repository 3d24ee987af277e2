"""sim_node over real DDS: joint states, controller commands, trajectories, reset, clock."""

import math
import time

import numpy as np
import pytest

pytest.importorskip('rclpy')

from geometry_msgs.msg import PoseStamped  # noqa: E402, I100
from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, JointState  # noqa: E402
from std_msgs.msg import Bool, Float64MultiArray  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from lam_ros.data.messages import image_to_array  # noqa: E402, I100
from lam_ros.nodes.common import (  # noqa: E402
    MSG, pose_from_msg, positions_by_name, stamp_s)
from lam_ros.sim.robot import ALL_JOINT_NAMES, JOINT_NAMES  # noqa: E402

from .ros_harness import isolate_dds, NodeProcess, Probe  # noqa: E402


class SimClient:
    """Probe subscriptions and publishers for the sim node's topics."""

    def __init__(self, probe):
        self.probe = probe
        self.states, self.clocks, self.objects, self.success = [], [], [], []
        self.camera = {(cam, kind): [] for cam in ('scene', 'wrist')
                       for kind in ('image', 'depth', 'camera_info')}
        node = probe.node
        node.create_subscription(JointState, 'joint_states', self.states.append, 100)
        node.create_subscription(Clock, 'clock', self.clocks.append, 100)
        node.create_subscription(PoseStamped, 'object_pose', self.objects.append, 10)
        node.create_subscription(Bool, 'task_success', self.success.append, 10)
        for (cam, kind), store in self.camera.items():
            topic = {'image': 'image_raw', 'depth': 'depth/image_raw'}.get(kind, kind)
            node.create_subscription(CameraInfo if kind == 'camera_info' else Image,
                                     f'{cam}_camera/{topic}', store.append, 10)
        self.images = self.camera['scene', 'image']
        self.cmd_pub = node.create_publisher(
            Float64MultiArray, 'forward_position_controller/commands', 10)
        from trajectory_msgs.msg import JointTrajectory
        self.traj_pub = node.create_publisher(
            JointTrajectory, 'joint_trajectory_controller/joint_trajectory', 10)

    def q(self):
        return positions_by_name(self.states[-1], JOINT_NAMES)

    def command_for(self, cmd, seconds):
        """Publish ``cmd`` at 50 Hz for ``seconds`` (a fresh publisher needs discovery)."""
        for _ in range(int(seconds * 50)):
            self.cmd_pub.publish(MSG.float64_array(cmd))
            self.probe.spin_for(0.02)


def test_as_fast_as_possible_is_not_paced_by_the_wall_clock():
    """
    At real_time_factor 0 simulated time runs ahead of the wall clock.

    This is the only speed bar in the node tests (1x, where the sim alone does about 10x on
    one core); it runs first, before the module's camera sim starts. Figures: bench_sim.py.
    """
    isolate_dds()
    proc = NodeProcess('sim_node', {'real_time_factor': 0.0, 'clock_starts_at_wall_time': False})
    probe = Probe('fast_probe')
    clocks = []
    probe.node.create_subscription(Clock, 'clock', lambda m: clocks.append(stamp_s(m.clock)),
                                   100)
    try:
        assert probe.spin_until(lambda: len(clocks) > 5, 30.0), proc.output()
        t0, wall0 = clocks[-1], time.monotonic()
        assert probe.spin_until(lambda: clocks[-1] > t0 + 3.0, 30.0), proc.output()
        wall_s = time.monotonic() - wall0
        assert wall_s < 3.0, f'3 s of simulated time took {wall_s:.2f} s'
    finally:
        probe.close()
        assert proc.stop() == 0, proc.output()


@pytest.fixture(scope='module')
def sim():
    isolate_dds()
    proc = NodeProcess('sim_node', {'task': 'lift', 'seed': 3, 'joint_state_rate_hz': 100.0,
                                    'cameras': 'scene,wrist', 'camera_width': 32,
                                    'camera_height': 24, 'camera_rate_hz': 5.0,
                                    'camera_depth': True,
                                    'clock_starts_at_wall_time': False})
    probe = Probe('sim_probe')
    client = SimClient(probe)
    ok = probe.spin_until(lambda: len(client.states) > 20, 30.0)
    assert ok, 'no joint states from sim_node:\n' + proc.output()
    yield client, proc
    probe.close()
    assert proc.stop() == 0, proc.output()


def test_joint_states_names_rate_and_clock(sim):
    client, _ = sim
    n0 = len(client.states)
    assert client.probe.spin_until(lambda: len(client.states) >= n0 + 101, 30.0)
    assert client.probe.spin_until(lambda: client.images, 30.0)
    msgs = client.states[n0:n0 + 101]
    assert all(list(m.name) == list(ALL_JOINT_NAMES) for m in msgs)
    # 100 Hz in simulated time, whatever the load: 100 intervals span 1 s, none missing
    # (each stamp falls on a 240 Hz physics step).
    stamps = np.array([stamp_s(m.header.stamp) for m in msgs])
    assert stamps[-1] - stamps[0] == pytest.approx(1.0, abs=1 / 240 + 1e-6)
    assert np.all(np.diff(stamps) > 0) and np.all(np.diff(stamps) < 0.0126)
    # /clock and /joint_states are separate topics: the clock message of the last state
    # may still be on its way, so wait for it rather than read a snapshot.
    assert client.probe.spin_until(
        lambda: client.clocks and stamp_s(client.clocks[-1].clock) >= stamps[-1] - 0.011, 10.0)
    clocks = [stamp_s(c.clock) for c in client.clocks]
    assert np.all(np.diff(clocks) > 0)
    assert len(client.objects) > 0 and client.success and client.success[-1].data is False


def test_each_camera_publishes_rgb_depth_and_info_in_its_namespace(sim):
    """/scene_camera/... and /wrist_camera/...: rgb8 and 32FC1 at the set size, own frames."""
    client, _ = sim
    assert client.probe.spin_until(lambda: all(len(v) >= 2 for v in client.camera.values()),
                                   30.0)
    for cam in ('scene', 'wrist'):
        image = client.camera[cam, 'image'][-1]
        depth = client.camera[cam, 'depth'][-1]
        info = client.camera[cam, 'camera_info'][-1]
        frame = f'{cam}_camera_optical_frame'
        assert (image.width, image.height, image.encoding) == (32, 24, 'rgb8')
        assert len(image.data) == 32 * 24 * 3 and image.header.frame_id == frame
        assert (depth.width, depth.height, depth.encoding) == (32, 24, '32FC1')
        metres = image_to_array(depth)
        assert metres.shape == (24, 32, 1) and 0.0 < float(np.median(metres)) < 3.0
        assert (info.width, info.height, info.header.frame_id) == (32, 24, frame)
        assert info.k[0] > 0 and info.k[2] == pytest.approx(15.5)
    # Both cameras see the same scene from different places.
    assert bytes(client.camera['scene', 'image'][-1].data) != \
        bytes(client.camera['wrist', 'image'][-1].data)


def test_forward_command_moves_the_arm_and_bad_ones_are_ignored(sim):
    client, proc = sim
    target = client.q().copy()
    target[0] += 0.4
    target[7] = 0.01

    def reached():
        client.cmd_pub.publish(MSG.float64_array(target))
        return np.allclose(client.q()[[0, 7]], target[[0, 7]], atol=0.02)
    assert client.probe.spin_until(reached, 30.0), client.q()
    client.command_for(target, 0.3)  # settle
    held = client.q()
    bad_nan = target.copy()
    bad_nan[2] = math.nan
    for bad in (list(target[:7]), list(target) + [0.0], bad_nan):
        client.command_for(bad, 0.3)
    assert client.probe.spin_until(
        lambda: 'expects 8' in proc.output() and 'NaN' in proc.output(), 30.0), proc.output()
    np.testing.assert_allclose(client.q(), held, atol=0.01)


def test_trajectory_by_joint_name(sim):
    client, proc = sim
    start = client.q()
    goal = start[1] - 0.3
    # A partial goal is rejected, as by joint_trajectory_controller by default.
    client.traj_pub.publish(MSG.joint_trajectory(0, ['panda_joint2'], [goal], [0.6]))
    assert client.probe.spin_until(
        lambda: 'allow_partial_joints_goal' in proc.output(), 30.0), proc.output()
    assert client.q()[1] == pytest.approx(start[1], abs=0.02)
    names = list(reversed(JOINT_NAMES))  # by name, in any order
    point = [goal if n == 'panda_joint2' else start[JOINT_NAMES.index(n)] for n in names]
    n0 = len(client.states)
    client.traj_pub.publish(MSG.joint_trajectory(0, names, point, [0.6]))
    assert client.probe.spin_until(lambda: abs(client.q()[1] - goal) < 0.02, 30.0)
    # Interpolated over 0.6 s of sim time, not a jump: at 100 Hz, states on the way.
    path = [positions_by_name(m, JOINT_NAMES)[1] for m in client.states[n0:]]
    between = [v for v in path if goal + 0.02 < v < start[1] - 0.02]
    assert len(between) >= 20, path
    assert client.q()[0] == pytest.approx(start[0], abs=0.02)  # joints not named keep still
    client.traj_pub.publish(MSG.joint_trajectory(0, names + ['elbow'], point + [0.0], [0.5]))
    assert client.probe.spin_until(lambda: "['elbow']" in proc.output(), 30.0), proc.output()
    assert client.q()[1] == pytest.approx(goal, abs=0.02)


def test_reset_draws_a_new_episode(sim):
    client, _ = sim
    before = pose_from_msg(client.objects[-1])
    response = client.probe.call(Trigger, 'sim_node/reset')
    assert response.success, response.message
    n = len(client.objects)
    assert client.probe.spin_until(lambda: len(client.objects) > n + 2, 30.0)
    after = pose_from_msg(client.objects[-1])
    assert np.linalg.norm(after[:2] - before[:2]) > 1e-3
    assert client.q()[0] == pytest.approx(0.0, abs=0.1)  # back near home


def test_one_kilohertz_joint_states():
    isolate_dds()
    proc = NodeProcess('sim_node', {'joint_state_rate_hz': 1000.0, 'physics_rate_hz': 1000.0,
                                    'clock_starts_at_wall_time': False})
    probe = Probe('khz_probe')
    stamps = []
    probe.node.create_subscription(JointState, 'joint_states',
                                   lambda m: stamps.append(stamp_s(m.header.stamp)), 1000)
    try:
        assert probe.spin_until(lambda: len(stamps) > 100, 30.0), proc.output()
        t0 = stamps[50]
        # Real time only when the CPUs allow; what must hold is a state every millisecond.
        assert probe.spin_until(lambda: stamps[-1] > t0 + 1.01, 10.0), proc.output()
    finally:
        probe.close()
        assert proc.stop() == 0, proc.output()
    t = np.array(stamps[50:])
    window = t[(t >= t[0]) & (t < t[0] + 1.0)]
    # Every millisecond of simulated time has its joint state, and nothing more.
    assert len(window) >= 990, len(window)
    assert np.all(np.diff(t) > 0) and np.median(np.diff(t)) == pytest.approx(1e-3, abs=1e-6)


def test_far_step_command_stays_within_urdf_limits_on_joint_states(sim):
    """A valid far-step command moves the joint at most at its URDF velocity limit."""
    from lam_ros.sim.robot import joint_limits
    client, _ = sim
    limits = joint_limits(JOINT_NAMES)
    start = client.q()
    target = start.copy()
    target[0] = limits.upper[0]  # panda_joint1 swings freely to its limit
    n0 = len(client.states)
    client.command_for(target, 2.5)
    msgs = client.states[n0:]
    q = np.array([positions_by_name(m, JOINT_NAMES) for m in msgs])
    vel = np.array([[m.velocity[list(m.name).index(n)] for n in JOINT_NAMES] for m in msgs])
    t = np.array([stamp_s(m.header.stamp) for m in msgs])
    assert len(msgs) > 100 and abs(q[-1, 0] - limits.upper[0]) < 0.01
    assert np.all(q <= limits.upper + 1e-3) and np.all(q >= limits.lower - 1e-3)
    assert np.all(np.abs(vel) <= 1.01 * limits.velocity), np.abs(vel).max(0)
    finite = np.abs(np.diff(q, axis=0)) / np.diff(t)[:, None]
    assert np.all(finite <= 1.05 * limits.velocity), finite.max(0)
    assert finite[:, 0].max() > 0.8 * limits.velocity[0]  # it moves at about the limit
    client.command_for(start, 2.5)
