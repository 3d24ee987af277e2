"""
Bags from another robot, as `ros2 bag record` leaves them, imported or refused in one line.

The arm here is a UR-style 6-axis arm with a one-joint gripper: its driver publishes the joint
states in alphabetical order, its commands come in yet another order at 25 or 50 Hz, episodes
last well under a second and end at success, and the object pose is stamped in ``world``, which
only ``/tf_static`` (or the mapping) relates to the robot base ``base_link``.
"""

from pathlib import Path

from lam_ros.data import messages as m
from lam_ros.data.bags.reader import TopicMapping
from lam_ros.data.bags.writer import write_bag
from lam_ros.data.dataset.build import build_dataset
from lam_ros.data.dataset.report import exclusion_lines, summary_lines
import numpy as np
import pytest
from transforms3d import affines, euler, quaternions
import yaml

JOINTS = ['shoulder_pan_joint', 'shoulder_lift_joint', 'elbow_joint', 'wrist_1_joint',
          'wrist_2_joint', 'wrist_3_joint', 'finger_joint']
STATE_ORDER = sorted(JOINTS)  # as ros2_control's joint_state_broadcaster publishes them
COMMAND_ORDER = JOINTS[::-1]
JS, CMD, OBJ, OK = '/joint_states', '/arm_controller/commands', '/object_pose', '/task_success'
BASE_NS = 1_764_500_000 * 10**9
CMD_OFFSET_S = 0.004
# base_link in world: 0.1 m, -0.2 m, 0.8 m up, turned 90 degrees about z.
BASE_IN_WORLD = np.r_[[0.1, -0.2, 0.8], euler.euler2quat(0.0, 0.0, np.pi / 2)]


def mapping(**overrides) -> TopicMapping:
    """Return the mapping a user writes for this arm."""
    fields = {'joint_names': JOINTS, 'joint_state_topic': JS, 'command_topic': CMD,
              'command_joint_names': COMMAND_ORDER, 'object_pose_topic': OBJ,
              'goal_pose_topic': None, 'cameras': {},
              'success_topic': OK, 'gripper_joints': [], 'base_frame': 'base_link'}
    fields.update(overrides)
    return TopicMapping(**fields)


def q(t):
    """Joint positions in JOINTS order at time t (s)."""
    j = np.arange(len(JOINTS))
    return 0.3 * j + 0.2 * np.sin(np.asarray(t)[..., None] + j)


def command(i):
    """Command number i, in JOINTS order: identifies both the command and the joint."""
    return 10.0 * np.arange(len(JOINTS)) + i


def object_in_world(t):
    """Object pose in world at time t: moving in x, turning about z (w-first)."""
    return np.r_[[0.6 + 0.1 * t, 0.2, 0.9], euler.euler2quat(0.0, 0.0, 0.5 * t)]


def matrix(pose):
    """4x4 homogeneous matrix of a pose [x, y, z, qw, qx, qy, qz]."""
    return affines.compose(pose[:3], quaternions.quat2mat(pose[3:]), np.ones(3))


def in_base(pose_world):
    """Return the expected pose in base_link, computed with matrices (not the code under test)."""
    mat = np.linalg.inv(matrix(BASE_IN_WORLD)) @ matrix(pose_world)
    quat = quaternions.mat2quat(mat[:3, :3])
    return np.r_[mat[:3, 3], quat]


def tf_static_record(parent, child, pose):
    """Return a /tf_static record with one transform: the pose of child in parent."""
    t = m.TYPESTORE.types
    transform = t['geometry_msgs/msg/Transform'](
        translation=t['geometry_msgs/msg/Vector3'](x=pose[0], y=pose[1], z=pose[2]),
        rotation=t['geometry_msgs/msg/Quaternion'](x=pose[4], y=pose[5], z=pose[6], w=pose[3]))
    stamped = t['geometry_msgs/msg/TransformStamped'](
        header=m.header(BASE_NS, parent), child_frame_id=child, transform=transform)
    return ('/tf_static', 'tf2_msgs/msg/TFMessage', BASE_NS,
            t['tf2_msgs/msg/TFMessage'](transforms=[stamped]))


def write_episode(path: Path, duration_s=0.8, cmd_hz=25, success=True, frame='world',
                  tf_static=True, storage='mcap', js_hz=100, pose_hz=30) -> Path:
    """Write one episode of this arm as `ros2 bag record` would."""
    records = []
    for k in range(int(round(duration_s * js_hz)) + 1):
        t = k / js_hz
        pos = dict(zip(JOINTS, q(t)))
        records.append((JS, m.JOINT_STATE, BASE_NS + int(t * 1e9),
                        m.joint_state(BASE_NS, STATE_ORDER, [pos[n] for n in STATE_ORDER])))
    for i in range(int((duration_s - CMD_OFFSET_S) * cmd_hz) + 1):
        values = dict(zip(JOINTS, command(i)))
        stamp = BASE_NS + int(round((CMD_OFFSET_S + i / cmd_hz) * 1e9))
        records.append((CMD, m.FLOAT64_ARRAY, stamp,
                        m.float64_array([values[n] for n in COMMAND_ORDER])))
    for k in range(int(round(duration_s * pose_hz)) + 1):
        t = k / pose_hz
        stamp = BASE_NS + int(round(t * 1e9))
        records.append((OBJ, m.POSE_STAMPED, stamp,
                        m.pose_stamped(stamp, frame, object_in_world(t))))
    if tf_static:
        records.append(tf_static_record('world', 'base_link', BASE_IN_WORLD))
    if success is not None:
        records.append((OK, m.BOOL, BASE_NS + int(duration_s * 1e9), m.bool_msg(success)))
    return write_bag(path, records, storage=storage)


def check_episode(ep, rate_hz):
    """Joints, commands and poses of an imported episode equal the analytic signals."""
    t = CMD_OFFSET_S + np.arange(len(ep)) / rate_hz
    np.testing.assert_allclose(ep.obs['joint_pos'], q(t), atol=1e-4)
    # Command i arrives exactly at sample i, so sample i is governed by command i.
    np.testing.assert_allclose(ep.action, np.stack([command(i) for i in range(len(ep))]),
                               atol=1e-5)
    expected = np.stack([in_base(object_in_world(x)) for x in t])
    np.testing.assert_allclose(ep.obs['object_pose'][:, :3], expected[:, :3], atol=1e-5)
    dots = np.abs(np.sum(ep.obs['object_pose'][:, 3:] * expected[:, 3:], axis=1))
    np.testing.assert_allclose(dots, 1.0, atol=1e-5)  # the same rotation (q and -q alike)


@pytest.mark.parametrize('cmd_hz,storage', [(25, 'mcap'), (50, 'sqlite3')])
def test_short_successful_episodes_import_at_their_command_rate(tmp_path, cmd_hz, storage):
    durations = [0.6, 0.75, 0.9, 0.65]
    for i, duration in enumerate(durations):
        write_episode(tmp_path / f'run_{i}', duration, cmd_hz, storage=storage)
    suffix = {'mcap': '.mcap', 'sqlite3': '.db3'}[storage]
    assert list((tmp_path / 'run_0').glob(f'*{suffix}'))
    ds = build_dataset(tmp_path, mapping())
    assert not ds.exclusions and not ds.warnings, (ds.exclusions, ds.warnings)
    assert ds.rate_hz == cmd_hz and 'measured' in ds.rate_source
    assert ds.joint_names == JOINTS
    assert [e.success for e in ds.episodes] == [True] * 4
    for ep, duration in zip(ds.episodes, durations):
        t_end = min(duration, round(duration * 30) / 30)  # the last joint state or pose
        assert len(ep) == int((t_end - CMD_OFFSET_S) * cmd_hz + 1e-6) + 1
        check_episode(ep, cmd_hz)


def test_a_declared_frame_transform_gives_the_same_poses_as_tf_static(tmp_path):
    write_episode(tmp_path / 'tf' / 'ep')
    write_episode(tmp_path / 'declared' / 'ep', tf_static=False)
    world_in_base = in_base(np.r_[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    with_tf = build_dataset(tmp_path / 'tf', mapping()).episodes[0]
    declared = build_dataset(tmp_path / 'declared', mapping(
        frame_transforms={'world': world_in_base.tolist()})).episodes[0]
    check_episode(declared, 25)
    np.testing.assert_allclose(declared.obs['object_pose'], with_tf.obs['object_pose'],
                               atol=1e-6)


def test_poses_already_in_the_base_frame_are_kept_as_they_are(tmp_path):
    write_episode(tmp_path / 'ep', frame='/base_link', tf_static=False)  # ROS 1 style slash
    ep = build_dataset(tmp_path, mapping()).episodes[0]
    t = CMD_OFFSET_S + np.arange(len(ep)) / 25
    np.testing.assert_allclose(ep.obs['object_pose'][:, :3],
                               np.stack([object_in_world(x)[:3] for x in t]), atol=1e-6)


def test_a_frame_nothing_relates_to_the_base_is_refused_in_one_line(tmp_path):
    for i in range(3):
        write_episode(tmp_path / f'ep{i}', tf_static=False)
    ds = build_dataset(tmp_path, mapping())
    assert not ds.episodes and len(ds.exclusions) == 3
    for exclusion in ds.exclusions:
        assert exclusion.kind == 'pose frame' and '\n' not in exclusion.reason
        assert "/object_pose poses are in 'world', not the base frame 'base_link'" in \
            exclusion.reason
        assert 'frame_transforms' in exclusion.reason and 'no /tf_static' in exclusion.reason
    report = exclusion_lines(ds)
    assert report[0].startswith('warning: excluded 3 of 3 episodes (100%)')
    assert 'frame_transforms in the --mapping YAML' in report[1]


def test_a_tf_static_without_a_path_to_the_pose_frame_is_refused(tmp_path):
    write_episode(tmp_path / 'ep', frame='table', tf_static=True)
    ds = build_dataset(tmp_path, mapping())
    assert not ds.episodes
    assert "/tf_static has no path from 'base_link' to it" in ds.exclusions[0].reason


def test_static_transforms_chain_through_several_frames(tmp_path):
    table_in_world = np.r_[[1.0, 0.5, 0.7], euler.euler2quat(0.0, 0.0, -0.4)]
    records = []
    for k in range(31):
        t = k / 30
        stamp = BASE_NS + int(round(t * 1e9))
        records.append((JS, m.JOINT_STATE, stamp, m.joint_state(stamp, JOINTS, q(t))))
        records.append((CMD, m.FLOAT64_ARRAY, stamp + 1000,
                        m.float64_array(command(k)[::-1])))
        records.append((OBJ, m.POSE_STAMPED, stamp, m.pose_stamped(
            stamp, 'table', [0.1, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0])))
    records += [tf_static_record('world', 'base_link', BASE_IN_WORLD),
                tf_static_record('world', 'table', table_in_world)]
    write_bag(tmp_path / 'ep', records)
    ep = build_dataset(tmp_path, mapping()).episodes[0]
    object_world = matrix(table_in_world) @ matrix(np.r_[[0.1, 0, 0], [1.0, 0, 0, 0]])
    expected = np.linalg.inv(matrix(BASE_IN_WORLD)) @ object_world
    np.testing.assert_allclose(ep.obs['object_pose'][0, :3], expected[:3, 3], atol=1e-6)


def test_failed_episodes_are_excluded_by_default_and_reported(tmp_path):
    outcomes = [True, False, None, True, False]
    for i, outcome in enumerate(outcomes):
        write_episode(tmp_path / f'ep{i}', 0.7, success=outcome)
    ds = build_dataset(tmp_path, mapping())
    assert [e.name for e in ds.episodes] == ['ep0', 'ep2', 'ep3']
    assert [e.success for e in ds.episodes] == [True, None, True]
    assert [(e.name, e.kind, e.option) for e in ds.exclusions] == [
        ('ep1', 'failed outcome', '--include-failures'),
        ('ep4', 'failed outcome', '--include-failures')]
    lines = summary_lines(ds)
    assert ('outcomes used: 2 successful, 1 without outcome; failed episodes excluded: 2 '
            '(--include-failures uses them)') in lines
    report = exclusion_lines(ds)
    assert report[0] == 'warning: excluded 2 of 5 episodes (40%); the dataset uses the other 3:'
    assert report[1].startswith('  2 failed outcome [--include-failures: ') and 'ep1, ep4' in \
        report[1]
    every = build_dataset(tmp_path, mapping(), include_failures=True)
    assert len(every.episodes) == 5 and not every.exclusions
    assert 'outcomes used: 2 successful, 1 without outcome, 2 failed (--include-failures)' in \
        summary_lines(every)


def test_a_minimum_duration_is_a_choice_and_its_exclusions_are_counted(tmp_path):
    for i, duration in enumerate([0.5, 1.5, 0.6, 1.2]):
        write_episode(tmp_path / f'ep{i}', duration)
    assert len(build_dataset(tmp_path, mapping()).episodes) == 4  # the default keeps all
    ds = build_dataset(tmp_path, mapping(), min_duration_s=1.0)
    assert [e.name for e in ds.episodes] == ['ep1', 'ep3']
    report = exclusion_lines(ds)
    assert report[0] == 'warning: excluded 2 of 4 episodes (50%); the dataset uses the other 2:'
    assert report[1] == '  2 too short [--min-duration-s: 0 keeps every episode]: ep0, ep2'
    assert 'too short: 0.52 s' in report[2]


def test_a_rate_that_differs_from_the_recording_is_a_warning(tmp_path):
    for i in range(2):
        write_episode(tmp_path / f'ep{i}', 1.0, cmd_hz=25)
    asked = build_dataset(tmp_path, mapping(), rate_hz=20.0)
    assert asked.rate_hz == 20.0 and len(asked.warnings) == 1
    assert asked.warnings[0].startswith(f'--rate-hz 20 differs from the recording: the '
                                        f'commands on {CMD} arrive at 25 Hz (mean interval '
                                        '40.0 ms over 2 episodes)')
    # A dataset.yaml that disagrees with the bags wins, and says so.
    (tmp_path / 'dataset.yaml').write_text(yaml.safe_dump({
        'rates': {'control_rate_hz': 20.0},
        'episodes': [{'name': 'ep0', 'status': 'complete'}, {'name': 'ep1'}]}))
    recorded = build_dataset(tmp_path, mapping())
    assert recorded.rate_hz == 20.0 and recorded.rate_source.startswith('the control rate')
    assert 'dataset.yaml records a control rate of 20 Hz but the commands' in \
        recorded.warnings[0]


def test_bags_that_cannot_be_read_are_reported_next_to_the_good_ones(tmp_path):
    write_episode(tmp_path / 'good')
    broken = write_episode(tmp_path / 'no_metadata')
    (broken / 'metadata.yaml').unlink()  # a recorder killed before closing the bag
    ds = build_dataset(tmp_path, mapping())
    assert [e.name for e in ds.episodes] == ['good']
    (exclusion,) = ds.exclusions
    assert exclusion.kind == 'unreadable'
    assert 'no_metadata.mcap but no metadata.yaml' in exclusion.reason
    assert 'ros2 bag reindex' in exclusion.reason
