"""Reading bags of any robot through a topic mapping: renamed, reordered and extra joints."""

from pathlib import Path

from lam_ros.data import messages as m
from lam_ros.data.bags.reader import (
    EpisodeError, find_episodes, read_commands, read_episode, TopicMapping)
from lam_ros.data.bags.writer import write_bag
from lam_ros.data.dataset.build import build_dataset
import numpy as np
import pytest
from rosbags.highlevel import AnyReader
import yaml

ROOT = Path(__file__).resolve().parents[3]
POLICY = [f'panda_joint{i}' for i in range(1, 8)] + ['panda_finger_joint1']
# The robot's driver: its own prefix, its own order, and joints the policy does not use.
BAG_NAMES = ['fr3_joint3', 'fr3_finger_joint2', 'fr3_joint1', 'fr3_joint7', 'base_yaw',
             'fr3_joint5', 'fr3_joint2', 'fr3_finger_joint1', 'fr3_joint4', 'camera_tilt',
             'fr3_joint6']
RENAME = {f'fr3_joint{i}': f'panda_joint{i}' for i in range(1, 8)}
RENAME.update(fr3_finger_joint1='panda_finger_joint1', fr3_finger_joint2='panda_finger_joint2')
JS, JTC, OBJ = '/franka/joint_states', '/arm/joint_trajectory', '/perception/object'
BASE_NS = 1_764_400_000 * 10**9


def policy_value(name: str, t: float) -> float:
    """Return a distinct signal per policy joint (fingers share one)."""
    renamed = RENAME.get(name, name)
    if renamed.startswith('panda_finger'):
        return 0.02 + 0.01 * np.sin(t)
    if renamed.startswith('panda_joint'):
        return int(renamed[-1]) + 0.1 * np.sin(t)
    return -5.0  # extra joints must never leak into the arrays


def write_plain_bag(path: Path, duration_s: float = 2.0, command_names=None,
                    trajectory=True) -> Path:
    """Write a `ros2 bag record`-style bag: 50 Hz joint states, 10 Hz commands, 15 Hz pose."""
    command_names = command_names or ['fr3_joint7', 'fr3_joint6', 'fr3_joint5', 'fr3_joint4',
                                      'fr3_joint3', 'fr3_joint2', 'fr3_joint1',
                                      'fr3_finger_joint1']
    records = []
    for k in range(int(duration_s * 50) + 1):
        t, stamp = k / 50, BASE_NS + k * 20_000_000
        pos = [policy_value(n, t) for n in BAG_NAMES]
        records.append((JS, m.JOINT_STATE, stamp, m.joint_state(stamp, BAG_NAMES, pos)))
        if k % 5 == 1:
            target = [policy_value(n, t) + 1.0 for n in command_names]
            if trajectory:
                msg = m.joint_trajectory(stamp, command_names, [target], [0.1])
                records.append((JTC, m.JOINT_TRAJECTORY, stamp, msg))
            else:
                records.append((JTC, m.FLOAT64_ARRAY, stamp, m.float64_array(target)))
        if k % 10 == 0:
            pose = m.pose_stamped(stamp, 'world', [0.5, 0, 0, 0, 0, 0, 1])
            q = pose.pose.orientation
            q.x, q.y, q.z, q.w = 0.6, 0.0, 0.0, 0.8  # the message's own x-y-z-w fields
            records.append((OBJ, m.POSE_STAMPED, stamp, pose))
    return write_bag(path, records)


def mapping(**overrides) -> TopicMapping:
    """Return the mapping that imports the plain bags above."""
    fields = {'joint_names': POLICY, 'joint_state_topic': JS, 'command_topic': JTC,
              'object_pose_topic': OBJ, 'joint_rename': RENAME,
              'frame_transforms': {'world': [0, 0, 0, 1, 0, 0, 0]}}  # the base sits at world
    fields.update(overrides)
    return TopicMapping(**fields)


def test_joints_are_renamed_selected_and_reordered(tmp_path):
    raw = read_episode(find_episodes(write_plain_bag(tmp_path / 'ep'))[0], mapping())
    t = (raw.streams['joint_pos'].times_ns - BASE_NS) * 1e-9
    expected = np.stack([[policy_value(n, x) for n in POLICY] for x in t])
    np.testing.assert_allclose(raw.streams['joint_pos'].values, expected)
    # No velocities in these bags; gripper width sums both fingers.
    assert 'joint_vel' not in raw.streams
    np.testing.assert_allclose(raw.streams['gripper_width'].values[:, 0],
                               2 * (0.02 + 0.01 * np.sin(t)))
    # Poses come out w-first.
    np.testing.assert_allclose(raw.streams['object_pose'].values[0], [0.5, 0, 0, 0.8, 0.6, 0, 0])


def test_plain_bag_with_trajectory_commands_builds_a_dataset(tmp_path):
    write_plain_bag(tmp_path / 'bags' / 'run1')
    write_plain_bag(tmp_path / 'bags' / 'run2', 3.0)
    ds = build_dataset(tmp_path / 'bags', mapping())
    assert [e.name for e in ds.episodes] == ['run1', 'run2'] and not ds.exclusions
    ep = ds.episodes[0]
    assert ds.observation_spec() == {'joint_pos': (8,), 'joint_vel': (8,),
                                     'gripper_width': (1,), 'object_pose': (7,)}
    times_ns, commands = read_commands(find_episodes(tmp_path / 'bags')[0], mapping())
    assert commands.shape == (len(times_ns), 8)
    # Commands were sent at t = 0.02 + 0.1 i with value(t) + 1, in policy order.
    t_cmd = (times_ns - BASE_NS) * 1e-9
    np.testing.assert_allclose(commands, [[policy_value(n, x) + 1.0 for n in POLICY]
                                          for x in t_cmd])
    np.testing.assert_allclose(ep.action[0], commands[0], atol=1e-6)
    assert ep.success is None
    # No dataset.yaml: the policy rate is the rate the commands were sent at.
    assert ds.rate_hz == 10.0 and 'measured' in ds.rate_source
    # Velocities are differentiated from positions when the bag has none.
    t = 0.02 + np.arange(len(ep)) / 10.0
    np.testing.assert_allclose(ep.obs['joint_vel'][5:-5, 0], 0.1 * np.cos(t[5:-5]), atol=2e-3)


def test_float64_commands_use_command_joint_names(tmp_path):
    order = ['panda_finger_joint1'] + POLICY[:7][::-1]
    bag_order = [{v: k for k, v in RENAME.items()}[n] for n in order]
    write_plain_bag(tmp_path / 'ep', command_names=bag_order, trajectory=False)
    entry = find_episodes(tmp_path / 'ep')[0]
    _, commands = read_commands(entry, mapping(command_joint_names=order))
    np.testing.assert_allclose(commands[0], [policy_value(n, 0.02) + 1.0 for n in POLICY])
    # Without the order the commands would be silently scrambled; the length still matches,
    # so the declared order is what makes them right.
    _, scrambled = read_commands(entry, mapping())
    assert not np.allclose(scrambled[0], commands[0])


def test_unknown_and_missing_joints_are_episode_errors(tmp_path):
    write_plain_bag(tmp_path / 'extra', command_names=['fr3_joint1', 'fr3_joint2', 'fr3_joint3',
                                                       'fr3_joint4', 'fr3_joint5', 'fr3_joint6',
                                                       'fr3_joint7', 'fr3_finger_joint1',
                                                       'base_yaw'])
    write_plain_bag(tmp_path / 'missing', command_names=['fr3_joint1', 'fr3_joint2'])
    with pytest.raises(EpisodeError, match=r"unknown joints \['base_yaw'\]"):
        read_episode(find_episodes(tmp_path / 'extra')[0], mapping())
    with pytest.raises(EpisodeError, match='lacks joints'):
        read_episode(find_episodes(tmp_path / 'missing')[0], mapping())
    # Without the renaming, the policy's joints are not in the bag at all.
    with pytest.raises(EpisodeError, match=r"joint state lacks joints \['panda_joint1'"):
        read_episode(find_episodes(tmp_path / 'missing')[0], mapping(joint_rename={}))
    ds = build_dataset(tmp_path, mapping())
    assert not ds.episodes and {e.name for e in ds.exclusions} == {'extra', 'missing'}


def test_missing_topics_and_bad_sources(tmp_path):
    write_plain_bag(tmp_path / 'ep')
    with pytest.raises(EpisodeError, match='required topic /joint_states is not in the bag'):
        read_episode(find_episodes(tmp_path / 'ep')[0], TopicMapping())
    with pytest.raises(ValueError, match='does not exist'):
        find_episodes(tmp_path / 'nope')


def test_mapping_yaml_example_and_errors(tmp_path):
    example = TopicMapping.from_yaml(ROOT / 'config' / 'dataset_mapping.example.yaml')
    assert example.joint_names == POLICY and example.joint_rename['fr3_joint1'] == 'panda_joint1'
    assert example.goal_pose_topic is None
    bad = tmp_path / 'bad.yaml'
    bad.write_text('joint_names: [a, a]\n')
    with pytest.raises(ValueError, match='distinct'):
        TopicMapping.from_yaml(bad)
    bad.write_text('- just a list\n')
    with pytest.raises(ValueError, match='mapping of field'):
        TopicMapping.from_yaml(bad)
    assert TopicMapping.from_dict(example.to_dict()) == example


def test_default_mapping_is_the_robot_descriptions(tmp_path):
    from lam_ros.description import load_robot
    from lam_ros.description.robot import robot_yaml_path
    panda = load_robot()
    mapping = TopicMapping()
    assert tuple(mapping.joint_names) == panda.joint_names
    assert (mapping.joint_state_topic, mapping.command_topic) == (
        panda.topics.joint_state, panda.topics.command)
    assert tuple(mapping.gripper_joints) == panda.gripper.width_joints
    data = yaml.safe_load(Path(robot_yaml_path('panda')).read_text())
    data.update(name='fr3', joint_names=[f'fr3_joint{i}' for i in range(1, 8)] + ['fr3_finger'],
                gripper={'joint': 'fr3_finger', 'open_m': 0.04, 'closed_m': 0.0},
                topics=dict(data['topics'], joint_state='/franka/joint_states'))
    (tmp_path / 'fr3.yaml').write_text(yaml.safe_dump(data))
    fr3 = TopicMapping.for_robot(str(tmp_path / 'fr3.yaml'), success_topic=None)
    assert fr3.joint_names[-1] == 'fr3_finger' and fr3.gripper_joints == ['fr3_finger']
    assert fr3.joint_state_topic == '/franka/joint_states'
    assert fr3.command_topic == panda.topics.command and fr3.success_topic is None


def test_bytes_from_a_real_ros2_recording_are_read(tmp_path):
    """`ros2 bag record` stores what Fast DDS sent, padding after empty arrays included."""
    serialization = pytest.importorskip('rclpy.serialization')
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float64MultiArray
    from rosbags.rosbag2 import StoragePlugin, Writer
    with Writer(tmp_path / 'real', version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        js = writer.add_connection('/joint_states', m.JOINT_STATE, typestore=m.TYPESTORE)
        cmd = writer.add_connection('/forward_position_controller/commands', m.FLOAT64_ARRAY,
                                    typestore=m.TYPESTORE)
        for k in range(101):
            stamp = BASE_NS + k * 20_000_000
            msg = JointState(name=POLICY, position=[0.1 * k] * 8)  # empty velocity, effort
            writer.write(js, stamp, serialization.serialize_message(msg))
            writer.write(cmd, stamp + 1, serialization.serialize_message(
                Float64MultiArray(data=[0.1 * k] * 8)))
    ds = build_dataset(tmp_path / 'real', TopicMapping(gripper_joints=[]))
    assert not ds.exclusions, ds.exclusions
    assert ds.rate_hz == 50.0  # the rate the commands were sent at
    np.testing.assert_allclose(ds.episodes[0].obs['joint_pos'][:3, 0], [0.0, 0.1, 0.2],
                               atol=1e-6)


def test_truncated_bag_is_an_exclusion_not_a_crash(tmp_path):
    bag = write_plain_bag(tmp_path / 'bags' / 'cut')
    mcap = next(bag.glob('*.mcap'))
    mcap.write_bytes(mcap.read_bytes()[:len(mcap.read_bytes()) // 2])
    write_plain_bag(tmp_path / 'bags' / 'whole')
    ds = build_dataset(tmp_path / 'bags', mapping())
    assert [e.name for e in ds.episodes] == ['whole']
    assert ds.exclusions[0].name == 'cut' and 'bag' in ds.exclusions[0].reason


def test_dataset_build_with_a_mapping_file_end_to_end(tmp_path, capsys):
    """
    Build with ``lam-ros dataset build BAGS --mapping YAML --out CACHE``.

    The cache has the policy's joints, with the values of the other robot's bags.
    """
    from lam_ros.cli import main
    from lam_ros.data.dataset.build import Dataset
    write_plain_bag(tmp_path / 'bags' / 'ep0')
    write_plain_bag(tmp_path / 'bags' / 'ep1', duration_s=3.0)
    mapping_file = tmp_path / 'fr3.yaml'
    mapping_file.write_text(yaml.safe_dump(mapping().to_dict()))
    cache = tmp_path / 'fr3.safetensors'
    assert main(['dataset', 'build', str(tmp_path / 'bags'), '--mapping', str(mapping_file),
                 '--out', str(cache)]) == 0, capsys.readouterr()
    ds = Dataset.load(cache)
    assert [ep.name for ep in ds.episodes] == ['ep0', 'ep1'] and not ds.exclusions
    assert ds.joint_names == POLICY
    first = ds.episodes[0]
    # Samples at the rate measured on the 10 Hz commands (no dataset.yaml gives one) of the
    # renamed joints (panda_jointN = N + 0.1 sin t), extras dropped.
    assert ds.rate_hz == pytest.approx(10.0)
    t = np.arange(len(first.obs['joint_pos'])) / ds.rate_hz
    np.testing.assert_allclose(first.obs['joint_pos'][:, 0], 1 + 0.1 * np.sin(t), atol=5e-3)
    np.testing.assert_allclose(first.obs['joint_pos'][:, 6], 7 + 0.1 * np.sin(t), atol=5e-3)
    assert np.all(first.action[:, :7] > 0.5)
    assert 'object_pose' in first.obs


def test_sqlite3_bags_import_like_mcap(tmp_path):
    """Bags in rosbag2's older SQLite3 storage (.db3) build the same dataset as MCAP."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    mcap = write_plain_bag(tmp_path / 'mcap' / 'ep')
    db3 = tmp_path / 'db3' / 'ep'
    db3.parent.mkdir()
    with AnyReader([mcap], default_typestore=m.TYPESTORE) as reader, \
            Writer(db3, version=8, storage_plugin=StoragePlugin.SQLITE3) as writer:
        connections = {c.topic: writer.add_connection(c.topic, c.msgtype,
                                                      typestore=m.TYPESTORE)
                       for c in reader.connections}
        for conn, stamp, raw in reader.messages():
            writer.write(connections[conn.topic], stamp, raw)
    assert list(db3.glob('*.db3'))
    from_db3 = build_dataset(db3, mapping())
    from_mcap = build_dataset(mcap, mapping())
    assert not from_db3.exclusions and len(from_db3.episodes) == 1
    for key, values in from_mcap.episodes[0].obs.items():
        np.testing.assert_array_equal(from_db3.episodes[0].obs[key], values, err_msg=key)
    np.testing.assert_array_equal(from_db3.episodes[0].action, from_mcap.episodes[0].action)
