"""teleop_node over real DDS: twist teleop, stale input, leader mapping, scripted lift."""

import time

import numpy as np
import pytest

pytest.importorskip('rclpy')

from geometry_msgs.msg import TwistStamped  # noqa: E402, I100
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Bool, Float64, Float64MultiArray  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402
from trajectory_msgs.msg import JointTrajectory  # noqa: E402

from lam_ros.nodes.common import MSG  # noqa: E402, I100
from lam_ros.sim.kinematics import PandaKinematics  # noqa: E402
from lam_ros.sim.robot import ALL_JOINT_NAMES, HOME_JOINT_POS, JOINT_NAMES  # noqa: E402

from .ros_harness import isolate_dds, NodeProcess, Probe  # noqa: E402

HOME9 = np.r_[HOME_JOINT_POS, HOME_JOINT_POS[7]]


@pytest.fixture
def ros():
    """Yield a probe in a fresh DDS domain; node processes are stopped afterwards."""
    isolate_dds()
    probe = Probe('teleop_probe')
    procs = []
    yield probe, procs
    probe.close()
    # Stop every process before judging any, so that one failure leaves no orphan running.
    codes = [proc.stop() for proc in procs]
    for proc, code in zip(procs, codes):
        assert code == 0, proc.output()


def _publish_state(probe, pub):
    pub.publish(MSG.joint_state(0, ALL_JOINT_NAMES, HOME9, np.zeros(9), np.zeros(9)))


def test_twist_moves_the_tool_and_stale_input_holds(ros):
    probe, procs = ros
    procs.append(NodeProcess('teleop_node', {'source': 'cartesian', 'rate_hz': 50.0,
                                             'command_timeout_s': 0.3}))
    commands = []
    probe.node.create_subscription(Float64MultiArray, '/forward_position_controller/commands',
                                   lambda m: commands.append(np.array(m.data)), 100)
    state_pub = probe.node.create_publisher(JointState, '/joint_states', 10)
    twist_pub = probe.node.create_publisher(TwistStamped, '/teleop_node/delta_twist_cmds', 10)
    grip_pub = probe.node.create_publisher(Float64, '/teleop_node/gripper_cmd', 10)

    def run(seconds, twist=None, gripper=None):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            _publish_state(probe, state_pub)
            if twist is not None:
                msg = TwistStamped()
                msg.header.frame_id = 'panda_link0'
                msg.twist.linear.x, msg.twist.linear.z = twist
                twist_pub.publish(msg)
            if gripper is not None:
                grip_pub.publish(Float64(data=gripper))
            probe.spin_for(0.02)

    assert probe.spin_until(lambda: (_publish_state(probe, state_pub), commands)[1], 30.0), \
        procs[0].output()
    n0, t0 = len(commands), time.monotonic()
    run(0.5)
    np.testing.assert_allclose(commands[-1], HOME_JOINT_POS, atol=1e-6)  # no input: hold
    kin = PandaKinematics()
    try:
        start, _ = kin.fk(commands[-1][:7])
        run(1.0, twist=(0.1, -0.05), gripper=0.5)
        moved, _ = kin.fk(commands[-1][:7])
        delta = moved - start
        # Direction exactly; distance loosely (0.1 m at full rate; a loaded CPU skips ticks).
        assert 0.03 < delta[0] < 0.12, delta
        assert delta[2] / delta[0] == pytest.approx(-0.5, abs=0.05)
        assert abs(delta[1]) < 0.1 * delta[0]
        assert commands[-1][7] == pytest.approx(0.02)
        run(0.5)  # twist stops: after command_timeout_s the arm holds still
        held = commands[-1]
        run(0.5)
        np.testing.assert_allclose(commands[-1], held, atol=1e-9)
        assert np.allclose(commands[-10], held)
    finally:
        kin.close()
    # At most rate_hz (a load can only make it fewer): one command per tick, not per input.
    rate = (len(commands) - n0) / (time.monotonic() - t0)
    assert rate < 55, f'{rate} commands/s at rate_hz 50'


def test_leader_mapping_by_name_on_the_trajectory_interface(ros):
    probe, procs = ros
    leader_names = [f'leader_{i}' for i in range(1, 8)] + ['leader_gripper']
    procs.append(NodeProcess('teleop_node', {
        'source': 'leader', 'rate_hz': 50.0, 'command_interface': 'trajectory',
        'command_timeout_s': 0.3, 'leader.leader_joints': leader_names,
        'leader.scale': [1.0] * 7 + [0.5], 'leader.offset': [0.0] * 8}))
    trajectories = []
    probe.node.create_subscription(JointTrajectory,
                                   '/joint_trajectory_controller/joint_trajectory',
                                   trajectories.append, 100)
    state_pub = probe.node.create_publisher(JointState, '/joint_states', 10)
    leader_pub = probe.node.create_publisher(JointState, '/leader/joint_states', 10)
    leader_q = HOME_JOINT_POS.copy()
    leader_q[0] = 0.3
    leader_q[7] = 0.06  # scaled by 0.5 -> 0.03 m finger
    order = [7, 3, 0, 1, 2, 4, 5, 6]

    def run(seconds, with_leader):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            _publish_state(probe, state_pub)
            if with_leader:
                msg = JointState(name=[leader_names[i] for i in order] + ['other'],
                                 position=[float(leader_q[i]) for i in order] + [9.0])
                leader_pub.publish(msg)
            probe.spin_for(0.02)

    assert probe.spin_until(lambda: (_publish_state(probe, state_pub), trajectories)[1], 30.0)
    run(1.0, with_leader=True)
    last = trajectories[-1]
    assert list(last.joint_names) == list(JOINT_NAMES)
    expected = HOME_JOINT_POS.copy()
    expected[0], expected[7] = 0.3, 0.03
    np.testing.assert_allclose(last.points[0].positions, expected, atol=1e-6)
    assert last.points[0].time_from_start.nanosec > 0
    # The 0.3 rad step was rate limited: some commands lie in between.
    firsts = [t.points[0].positions[0] for t in trajectories]
    assert any(0.01 < v < 0.29 for v in firsts)
    leader_q[0] = -0.3
    run(0.6, with_leader=False)  # the leader went quiet: hold
    np.testing.assert_allclose(trajectories[-1].points[0].positions, expected, atol=1e-6)


def test_scripted_teleop_and_sim_node_complete_a_lift(ros):
    probe, procs = ros
    procs.append(NodeProcess('sim_node', {'task': 'lift', 'seed': 1, 'real_time_factor': 2.0,
                                          'clock_starts_at_wall_time': False}))
    procs.append(NodeProcess('teleop_node', {'source': 'scripted', 'task': 'lift',
                                             'rate_hz': 20.0, 'expert_seed': 1,
                                             'use_sim_time': True}))
    success = []
    probe.node.create_subscription(Bool, '/task_success', lambda m: success.append(m.data), 10)
    ok = probe.spin_until(lambda: any(success), 40.0)
    assert ok, procs[0].output() + procs[1].output()


def test_keyboard_keys_from_a_terminal_move_the_tool(ros):
    import os
    import pty
    import subprocess
    import sys
    from .ros_harness import ROOT
    probe, _ = ros
    leader_fd, follower_fd = pty.openpty()
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.Popen(
        [sys.executable, '-m', 'lam_ros.nodes.teleop_node', '--ros-args', '-p',
         'source:=keyboard', '-p', 'rate_hz:=50.0'],
        stdin=follower_fd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT,
        env=env)
    commands = []
    probe.node.create_subscription(Float64MultiArray, '/forward_position_controller/commands',
                                   lambda m: commands.append(np.array(m.data)), 100)
    state_pub = probe.node.create_publisher(JointState, '/joint_states', 10)
    calls = []

    def service(name):
        def handle(request, response):
            calls.append(name)
            response.success, response.message = True, name
            return response
        return probe.node.create_service(Trigger, name, handle)
    services = [service('/recorder_node/start_episode'), service('/sim_node/reset')]
    kin = PandaKinematics()
    try:
        assert probe.spin_until(lambda: (_publish_state(probe, state_pub), commands)[1], 30.0)
        start, _ = kin.fk(commands[-1][:7])
        for _ in range(40):  # hold 'r' (up) with auto-repeat, then close the gripper
            os.write(leader_fd, b'r')
            _publish_state(probe, state_pub)
            probe.spin_for(0.025)
        os.write(leader_fd, b'c')
        for _ in range(10):
            _publish_state(probe, state_pub)
            probe.spin_for(0.02)
        end, _ = kin.fk(commands[-1][:7])
        assert end[2] - start[2] > 0.05, end - start  # 0.1 m/s for about a second
        assert np.linalg.norm((end - start)[:2]) < 0.01
        assert commands[-1][7] < 0.04  # closing, rate limited
        os.write(leader_fd, b'1')  # start recording
        probe.spin_for(0.3)
        os.write(leader_fd, b'0')  # new scene: the teleop re-anchors at the measured state
        for _ in range(25):
            _publish_state(probe, state_pub)
            probe.spin_for(0.02)
        assert calls == ['/recorder_node/start_episode', '/sim_node/reset']
        np.testing.assert_allclose(commands[-1], HOME_JOINT_POS, atol=1e-9)
    finally:
        kin.close()
        for server in services:
            probe.node.destroy_service(server)
        proc.send_signal(2)
        try:
            proc.wait(5.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        os.close(leader_fd)
        os.close(follower_fd)
    assert proc.returncode == 0


def test_joystick_needs_the_dead_man_button(ros):
    from sensor_msgs.msg import Joy
    probe, procs = ros
    procs.append(NodeProcess('teleop_node', {'source': 'joy', 'rate_hz': 50.0}))
    commands = []
    probe.node.create_subscription(Float64MultiArray, '/forward_position_controller/commands',
                                   lambda m: commands.append(np.array(m.data)), 100)
    state_pub = probe.node.create_publisher(JointState, '/joint_states', 10)
    joy_pub = probe.node.create_publisher(Joy, '/joy', 10)

    def run(seconds, deadman):
        buttons = [0] * 11
        buttons[9] = int(deadman)  # LB
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            _publish_state(probe, state_pub)
            joy_pub.publish(Joy(axes=[0.0, 1.0, 0.0, 0.0, 0.0, 0.0], buttons=buttons))
            probe.spin_for(0.02)

    assert probe.spin_until(lambda: (_publish_state(probe, state_pub), commands)[1], 30.0)
    kin = PandaKinematics()
    try:
        start, _ = kin.fk(commands[-1][:7])
        run(0.8, deadman=False)  # stick pushed, dead-man released: nothing moves
        np.testing.assert_allclose(kin.fk(commands[-1][:7])[0], start, atol=1e-6)
        run(0.8, deadman=True)   # left stick up = +x at 0.15 m/s
        moved = kin.fk(commands[-1][:7])[0] - start
        assert 0.06 < moved[0] < 0.15 and abs(moved[1]) < 0.005 and abs(moved[2]) < 0.005
    finally:
        kin.close()


def test_twist_teleop_of_the_six_joint_xarm(ros):
    """robot:=xarm6: the same node solves IK for 6 joints and commands the drive gripper."""
    from lam_ros.description import load_robot
    from lam_ros.sim.kinematics import ArmKinematics
    xarm = load_robot('xarm6')
    probe, procs = ros
    procs.append(NodeProcess('teleop_node', {'robot': 'xarm6', 'source': 'cartesian',
                                             'rate_hz': 50.0, 'command_timeout_s': 0.3}))
    commands = []
    probe.node.create_subscription(Float64MultiArray, '/forward_position_controller/commands',
                                   lambda m: commands.append(np.array(m.data)), 100)
    state_pub = probe.node.create_publisher(JointState, '/joint_states', 10)
    twist_pub = probe.node.create_publisher(TwistStamped, '/teleop_node/delta_twist_cmds', 10)
    grip_pub = probe.node.create_publisher(Float64, '/teleop_node/gripper_cmd', 10)
    home = np.array(xarm.home_pose)
    state = np.r_[home, [home[6]] * 5]

    def publish_state():
        state_pub.publish(MSG.joint_state(0, xarm.state_joint_names, state, np.zeros(12),
                                          np.zeros(12)))

    assert probe.spin_until(lambda: (publish_state(), commands)[1], 30.0), procs[0].output()
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        publish_state()
        msg = TwistStamped()
        msg.header.frame_id = 'link_base'
        msg.twist.linear.y = 0.1
        twist_pub.publish(msg)
        grip_pub.publish(Float64(data=0.0))
        probe.spin_for(0.02)
    assert commands[-1].shape == (7,)
    kin = ArmKinematics(robot=xarm)
    try:
        start, _ = kin.fk(home[:6])
        moved, _ = kin.fk(commands[-1][:6])
    finally:
        kin.close()
    delta = moved - start
    assert 0.03 < delta[1] < 0.12 and abs(delta[0]) < 0.1 * delta[1], delta
    assert commands[-1][6] == pytest.approx(xarm.gripper.closed)  # 0 open fraction: closed
