"""sim_node + scripted teleop_node + recorder_node: record episodes, read the bags back."""

import json
from pathlib import Path
import re
import subprocess

import numpy as np
import pytest
import yaml

pytest.importorskip('rclpy')

from geometry_msgs.msg import PoseStamped  # noqa: E402, I100
from rosbags.highlevel import AnyReader  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import Bool, Float64MultiArray, String  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from lam_ros.data.dataset.build import build_dataset  # noqa: E402, I100
from lam_ros.data.messages import TYPESTORE  # noqa: E402
from lam_ros.sim.robot import ALL_JOINT_NAMES, JOINT_NAMES  # noqa: E402

from .ros_harness import isolate_dds, NodeProcess, Probe  # noqa: E402

RATE_FACTOR = 1.0
COMMAND_TOPIC = '/forward_position_controller/commands'


def _read_bag(path):
    out = {}
    with AnyReader([path], default_typestore=TYPESTORE) as reader:
        for conn, t_ns, raw in reader.messages():
            out.setdefault(conn.topic, []).append((t_ns, reader.deserialize(raw, conn.msgtype)))
    return out


def test_record_scripted_lift_episodes(tmp_path):
    isolate_dds()
    out_dir = tmp_path / 'demos'
    procs = [
        NodeProcess('sim_node', {'task': 'lift', 'seed': 5, 'real_time_factor': RATE_FACTOR,
                                 'clock_starts_at_wall_time': False}),
        # The expert holds the arm until a recording runs (as sim_record.launch.py sets it), so
        # every episode is recorded from its start however late start_episode is answered.
        NodeProcess('teleop_node', {'source': 'scripted', 'task': 'lift', 'rate_hz': 20.0,
                                    'expert_seed': 5, 'use_sim_time': True,
                                    'expert_waits_for': '/recorder_node/status'}),
        NodeProcess('recorder_node', {'output_dir': str(out_dir), 'task': 'lift',
                                      'use_sim_time': True}),
    ]
    probe = Probe('pipeline_probe')
    success, recorder_success = [], []
    probe.node.create_subscription(Bool, '/task_success', lambda m: success.append(m.data), 10)
    probe.node.create_subscription(
        String, '/recorder_node/status',
        lambda m: recorder_success.append(json.loads(m.data)['success']), 10)
    logs = lambda: '\n'.join(p.output() for p in procs)  # noqa: E731
    try:
        expected = []  # the status each episode in dataset.yaml must end with
        for episode in range(3):
            for attempt in range(2):
                if episode or attempt:
                    assert probe.call(Trigger, '/sim_node/reset').success
                    assert probe.call(Trigger, '/teleop_node/reset').success
                    probe.spin_for(0.2)
                # Marked before the call: the expert starts as soon as the recorder records,
                # which may be before a loaded machine delivers the call's answer.
                del success[:]
                started = probe.call(Trigger, '/recorder_node/start_episode', timeout_s=20.0)
                assert started.success, started.message + logs()
                if episode == 1:  # the operator fumbles: throw this one away
                    probe.spin_for(0.5)
                    assert probe.call(Trigger, '/recorder_node/discard_episode').success
                    expected.append('discarded')
                    break
                # A fresh success: a True after the new episode's first False (a True still in
                # flight from before the reset is not this episode's). A starved machine may
                # cost the closed-loop expert its grasp once: that episode is discarded and the
                # scene drawn again, as an operator would.
                if probe.spin_until(
                        lambda: False in success and any(success[success.index(False):]),
                        30.0):
                    break
                assert attempt == 0, 'the expert never lifted the cube twice in a row\n' + logs()
                assert probe.call(Trigger, '/recorder_node/discard_episode').success
                expected.append('discarded')
            if episode == 1:
                continue
            # Stop once the success value has reached the recorder too.
            assert probe.spin_until(lambda: recorder_success and recorder_success[-1], 30.0)
            stopped = probe.call(Trigger, '/recorder_node/stop_episode')
            assert stopped.success and 'success=True' in stopped.message, stopped.message
            expected.append('complete')
    finally:
        probe.close()
        codes = [p.stop() for p in procs]
    assert codes == [0, 0, 0], logs()

    index = yaml.safe_load((out_dir / 'dataset.yaml').read_text())
    statuses = [(e['name'], e['status'], e['success']) for e in index['episodes']]
    assert [s[1] for s in statuses] == expected, statuses
    assert expected.count('complete') == 2
    for name, status, ok in statuses:
        if status != 'complete':
            continue
        assert ok is True
        entry = next(e for e in index['episodes'] if e['name'] == name)
        bag = _read_bag(out_dir / name)
        states, commands = bag['/joint_states'], bag[COMMAND_TOPIC]
        duration_sim_s = entry['duration_s']
        assert 1.0 < duration_sim_s < 20.0
        # 100 Hz joint states and up to 20 Hz commands in simulated time (the recorder uses
        # /clock); a CPU-starved teleop skips ticks rather than bursting.
        assert abs(len(states) / duration_sim_s - 100.0) < 20.0, (len(states), duration_sim_s)
        assert 5.0 < len(commands) / duration_sim_s < 23.0, (len(commands), duration_sim_s)
        assert entry['message_counts']['/joint_states'] == len(states)
        assert all(list(m.name) == list(ALL_JOINT_NAMES) for _, m in states)
        assert all(len(m.data) == 8 and np.all(np.isfinite(m.data)) for _, m in commands)
        log_times = np.array([t for t, _ in states])
        stamps = np.array([m.header.stamp.sec * 10**9 + m.header.stamp.nanosec
                           for _, m in states])
        assert np.all(np.diff(log_times) >= 0) and np.all(np.diff(stamps) > 0)
        last_success = bag['/task_success'][-1][1].data
        assert last_success is True
        # The expert lifted the cube: the last object pose is well above the table.
        assert bag['/object_pose'][-1][1].pose.position.z > 0.1
    # The bags recorded over DDS are a training dataset: both complete episodes, only the
    # discarded ones excluded (the fumble, and a retried grasp if there was one), commands
    # and states aligned at the 20 Hz policy rate.
    dataset = build_dataset(out_dir)
    assert [(e.name, 'discarded' in e.reason) for e in dataset.exclusions] == [
        (s[0], True) for s in statuses if s[1] == 'discarded']
    assert [ep.name for ep in dataset.episodes] == [s[0] for s in statuses if s[1] == 'complete']
    assert dataset.rate_hz == 20.0 and dataset.joint_names == list(JOINT_NAMES)
    for ep in dataset.episodes:
        assert ep.success is True and len(ep.action) > 20
        assert np.all(np.isfinite(ep.action)) and np.all(np.isfinite(ep.obs['joint_pos']))
        assert ep.obs['object_pose'][-1][2] > 0.1  # the lift is in the data


def test_goal_pose_and_camera_topics_are_recorded_over_dds(tmp_path):
    """pick_place's /goal_pose and both cameras, recorder.yaml + recorder_camera.yaml + depth."""
    isolate_dds()
    config = Path(__file__).resolve().parents[2] / 'config'
    out_dir = tmp_path / 'demos'
    with open(config / 'recorder_camera.yaml') as f:
        params = yaml.safe_load(f)['recorder_node']['ros__parameters']
    # The wrist camera's depth on top of the file's topics, as a user adds it.
    topics = params['topics'] + ['/wrist_camera/depth/image_raw']
    types = params['topic_types'] + ['sensor_msgs/msg/Image']
    procs = [
        NodeProcess('sim_node', {'task': 'pick_place', 'seed': 2, 'cameras': 'scene,wrist',
                                 'camera_width': 32, 'camera_height': 24, 'camera_depth': True,
                                 'camera_rate_hz': 5.0, 'clock_starts_at_wall_time': False}),
        NodeProcess('recorder_node', extra_args=[  # -p after the files: it wins
            '--params-file', str(config / 'recorder.yaml'),
            '--params-file', str(config / 'recorder_camera.yaml'),
            '-p', f'topics:=[{",".join(topics)}]', '-p', f'topic_types:=[{",".join(types)}]',
            '-p', f'output_dir:={out_dir}', '-p', 'task:=pick_place']),
    ]
    probe = Probe('camera_probe')
    goals, images = [], []
    probe.node.create_subscription(PoseStamped, '/goal_pose', goals.append, 10)
    probe.node.create_subscription(Image, '/wrist_camera/image_raw', images.append, 10)
    # The operator's part: hold the home pose at 20 Hz, so the episode has actions.
    from lam_ros.description import load_robot
    from lam_ros.nodes.common import MSG
    home = MSG.float64_array(list(load_robot().home_pose))
    cmd_pub = probe.node.create_publisher(Float64MultiArray,
                                          '/forward_position_controller/commands', 10)
    probe.node.create_timer(0.05, lambda: cmd_pub.publish(home))
    logs = lambda: '\n'.join(p.output() for p in procs)  # noqa: E731
    try:
        # sim_node and the recorder both take the commands before the episode starts.
        assert probe.spin_until(lambda: cmd_pub.get_subscription_count() >= 2, 30.0), logs()
        assert probe.call(Trigger, '/recorder_node/start_episode', timeout_s=30.0).success
        n = len(images)
        assert probe.spin_until(lambda: len(images) >= n + 6 and goals, 60.0), logs()
        stopped = probe.call(Trigger, '/recorder_node/stop_episode')
        assert stopped.success, stopped.message
    finally:
        probe.close()
        codes = [p.stop() for p in procs]
    assert codes == [0, 0], logs()
    bag = _read_bag(out_dir / 'episode_000000')
    assert {'/goal_pose', '/scene_camera/image_raw', '/scene_camera/camera_info',
            '/wrist_camera/image_raw', '/wrist_camera/camera_info',
            '/wrist_camera/depth/image_raw'} <= set(bag), sorted(bag)
    for cam in ('scene', 'wrist'):
        image = bag[f'/{cam}_camera/image_raw'][-1][1]
        assert (image.width, image.height, image.encoding) == (32, 24, 'rgb8')
        assert len(image.data) == 32 * 24 * 3
        assert image.header.frame_id == f'{cam}_camera_optical_frame'
        assert bag[f'/{cam}_camera/camera_info'][-1][1].k[0] > 0
    depth = bag['/wrist_camera/depth/image_raw'][-1][1]
    assert (depth.width, depth.height, depth.encoding) == (32, 24, '32FC1')
    assert len(depth.data) == 32 * 24 * 4
    recorded_goal = bag['/goal_pose'][-1][1].pose.position
    sent_goal = goals[-1].pose.position
    assert (recorded_goal.x, recorded_goal.y, recorded_goal.z) == pytest.approx(
        (sent_goal.x, sent_goal.y, sent_goal.z))
    # The recording builds with both cameras, resized to the policy's 16x16.
    built = build_dataset(out_dir, include_failures=True, image_size=(16, 16))
    spec = built.observation_spec()
    assert built.episodes, [e.reason for e in built.exclusions]
    assert (spec['scene_rgb'], spec['wrist_rgb'], spec['wrist_depth']) == (
        (16, 16, 3), (16, 16, 3), (16, 16, 1)), spec
    assert 'scene_depth' not in spec and built.episodes[0].obs['wrist_rgb'].dtype == np.uint8


def test_record_an_xarm_episode_through_ros(tmp_path):
    """robot:=xarm6 on every node: sim, scripted teleop and recorder take the xArm 6."""
    from lam_ros.description import load_robot
    xarm = load_robot('xarm6')
    isolate_dds()
    out_dir = tmp_path / 'xarm'
    procs = [
        # Lockstep (real_time_factor 0): the grasp does not depend on how loaded the machine is.
        NodeProcess('sim_node', {'robot': 'xarm6', 'task': 'lift', 'seed': 3,
                                 'real_time_factor': 0.0,
                                 'clock_starts_at_wall_time': False}),
        # The expert waits for the recording, so the episode holds the whole demonstration
        # (a lift finished before a slow start_episode left a bag of only the last 0.3 s).
        NodeProcess('teleop_node', {'robot': 'xarm6', 'source': 'scripted', 'task': 'lift',
                                    'expert_seed': 3, 'use_sim_time': True,
                                    'expert_waits_for': '/recorder_node/status'}),
        NodeProcess('recorder_node', {'robot': 'xarm6', 'output_dir': str(out_dir),
                                      'task': 'lift', 'use_sim_time': True}),
    ]
    probe = Probe('xarm_probe')
    success, commands_seen, status = [], [], []
    probe.node.create_subscription(Bool, '/task_success', lambda m: success.append(m.data), 10)
    probe.node.create_subscription(Float64MultiArray, COMMAND_TOPIC,
                                   lambda m: commands_seen.append(list(m.data)), 10)
    probe.node.create_subscription(String, '/recorder_node/status',
                                   lambda m: status.append(m.data), 10)
    logs = lambda: '\n'.join(  # noqa: E731
        [f'success: {len(success)} messages, last {success[-3:]}; commands: '
         f'{len(commands_seen)}, last {commands_seen[-1:]}; recorder status: {status[-1:]}']
        + [p.output() for p in procs])
    try:
        # Nothing is cleared after the call: in lockstep the whole lift may be over before a
        # loaded machine delivers the call's answer (the expert starts once recording runs).
        started = probe.call(Trigger, '/recorder_node/start_episode', timeout_s=20.0)
        assert started.success, started.message + logs()
        # A fresh sim and an expert that waits for the recording: any True is this episode's.
        # The limit only bounds a hang.
        assert probe.spin_until(lambda: True in success, 120.0), logs()
        probe.spin_for(0.3)
        stopped = probe.call(Trigger, '/recorder_node/stop_episode')
        assert stopped.success and 'success=True' in stopped.message, stopped.message
    finally:
        probe.close()
        codes = [p.stop() for p in procs]
    assert codes == [0, 0, 0], logs()
    index = yaml.safe_load((out_dir / 'dataset.yaml').read_text())
    assert index['robot'] == 'xarm6' and index['joint_names'] == list(xarm.joint_names)
    assert index['gripper']['kind'] == 'drive'
    bag = _read_bag(out_dir / index['episodes'][0]['name'])
    assert tuple(bag['/joint_states'][-1][1].name) == xarm.state_joint_names
    commands = np.array([m.data for _, m in bag[COMMAND_TOPIC]])
    assert commands.shape[1] == 7
    assert commands[:, 6].max() > 0.5  # the gripper closed on the cube


def test_recording_as_fast_as_possible_keeps_every_episode_aligned(tmp_path):
    """
    real_time_factor 0: the sim outruns the recorder, and every episode is still in step.

    demo_runner_node records two episodes hands-free; each bag must hold its first and last
    messages, and the joint states must respond to the first arm command and the first
    gripper close within one control period of the commands' log times.
    """
    from lam_ros.data.recording.audit import audit_episode
    isolate_dds()
    out_dir = tmp_path / 'fast'
    procs = [
        NodeProcess('sim_node', {'task': 'lift', 'seed': 7, 'real_time_factor': 0.0,
                                 'clock_starts_at_wall_time': False}),
        NodeProcess('teleop_node', {'source': 'scripted', 'task': 'lift', 'rate_hz': 20.0,
                                    'expert_seed': 7, 'use_sim_time': True,
                                    'expert_waits_for': '/recorder_node/status'}),
        NodeProcess('recorder_node', {'output_dir': str(out_dir), 'task': 'lift',
                                      'use_sim_time': True}),
    ]
    runner = NodeProcess('demo_runner_node', {'episodes': 2, 'use_sim_time': True,
                                              'episode_timeout_s': 30.0, 'settle_s': 0.5,
                                              'service_timeout_s': 120.0})
    logs = lambda: '\n'.join(p.output() for p in procs + [runner])  # noqa: E731
    try:
        # The runner exits by itself after the last episode; the limit only bounds a hang.
        runner.proc.wait(600.0)
    except subprocess.TimeoutExpired:
        pass
    finally:
        # Commanders first, the sim (and its /clock) last; a loaded machine may take a while.
        codes = [p.stop(15.0) for p in [runner] + procs[::-1]]
    assert codes == [0, 0, 0, 0], logs()
    # The sim waited for the commander at the control period boundaries (hundreds of them in
    # two episodes at 20 Hz), and the commander rarely kept it waiting past command_wait_s.
    lockstep = re.search(r'lockstep: waited for a command at (\d+) boundaries, (\d+) timed out',
                         procs[0].output())
    assert lockstep, logs()
    waits, timeouts = int(lockstep[1]), int(lockstep[2])
    assert waits >= 100 and timeouts <= waits // 10, lockstep[0]
    index = yaml.safe_load((out_dir / 'dataset.yaml').read_text())
    entries = index['episodes']
    assert [e['status'] for e in entries] == ['complete', 'complete'], entries
    for entry in entries:
        # A command is never logged after the motion it causes (-1 state period at most), and
        # sim_node's lockstep applies it at the state it was computed from however late DDS
        # delivers it, so the audit's own bound (one 20 Hz control period) holds.
        audit = audit_episode(out_dir / entry['name'], index['joint_names'], index['gripper'],
                              COMMAND_TOPIC, control_period_s=0.05, state_period_s=0.01,
                              settle_s=0.5, success=entry['success'])
        assert not audit.misaligned, (audit, logs())
        bag = _read_bag(out_dir / entry['name'])
        assert all(t == m.header.stamp.sec * 10**9 + m.header.stamp.nanosec
                   for t, m in bag['/joint_states'])  # states are logged at their stamps
        assert audit.arm_delay_s is not None
        if entry['success']:
            assert audit.grasp_delay_s is not None and audit.tail_after_success_s >= 0.45
