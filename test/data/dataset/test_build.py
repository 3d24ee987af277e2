"""Building datasets from real MCAP bags: alignment, validation, statistics, env compatibility."""

from pathlib import Path

from lam_ros.data import messages as m
from lam_ros.data.bags.reader import TopicMapping
from lam_ros.data.dataset.build import build_dataset
from lam_ros.data.recording.recorder import DatasetRecorder
import numpy as np
import pytest
import yaml

ARM = [f'panda_joint{i}' for i in range(1, 8)]
JOINTS = ARM + ['panda_finger_joint1']
ALL = JOINTS + ['panda_finger_joint2']
JS, CMD, OBJ, OK = ('/joint_states', '/forward_position_controller/commands', '/object_pose',
                    '/task_success')
IMG, DEPTH = '/scene_camera/image_raw', '/scene_camera/depth/image_raw'
TOPICS = {JS: m.JOINT_STATE, CMD: m.FLOAT64_ARRAY, OBJ: m.POSE_STAMPED, OK: m.BOOL}
BASE_NS = 1_764_400_000 * 10**9  # wall-clock stamps, as a real recording has
CMD_OFFSET_S = 0.013


def joint_pos(t):
    """Analytic joint positions (9 joints): arm sines, both fingers 0.02 + 0.01 sin t."""
    t = np.asarray(t, dtype=np.float64)[..., None]
    arm = 0.1 * np.arange(7) + 0.5 * np.sin(t + np.arange(7))
    finger = 0.02 + 0.01 * np.sin(t)
    return np.concatenate([arm, finger, finger], axis=-1)


def joint_vel(t):
    """Time derivative of joint_pos."""
    t = np.asarray(t, dtype=np.float64)[..., None]
    finger = 0.01 * np.cos(t)
    return np.concatenate([0.5 * np.cos(t + np.arange(7)), finger, finger], axis=-1)


def command(i):
    """Command number i: a value that identifies it in every joint."""
    return float(i) + 0.01 * np.arange(8)


def object_quat(t):
    """Rotation about z by t rad, w-first."""
    return np.array([np.cos(t / 2), 0.0, 0.0, np.sin(t / 2)])


def ns(t_s):
    """Wall-clock stamp of episode time t_s."""
    return BASE_NS + int(round(t_s * 1e9))


def episode_records(duration_s=3.0, js_hz=100, cmd_hz=10, pose_hz=30, image_hz=0,
                    names=ALL, pos_fn=joint_pos, cmd_fn=command, skip=None):
    """Return (topic, msgtype, stamp_ns, msg) of one synthetic episode at analytic signals."""
    skip = skip or (lambda topic, t: False)
    out = []
    for k in range(int(duration_s * js_hz) + 1):
        t = k / js_hz
        if not skip(JS, t):
            msg = m.joint_state(ns(t), names, pos_fn(t), joint_vel(t))
            out.append((JS, m.JOINT_STATE, ns(t), msg))
    for i in range(int((duration_s - CMD_OFFSET_S) * cmd_hz) + 1):
        t = CMD_OFFSET_S + i / cmd_hz
        if not skip(CMD, t):
            out.append((CMD, m.FLOAT64_ARRAY, ns(t), m.float64_array(cmd_fn(i))))
    for k in range(int(duration_s * pose_hz) + 1 if pose_hz else 0):
        t = k / pose_hz
        pose = np.concatenate([[t, 0.1, 0.02], object_quat(t)])
        out.append((OBJ, m.POSE_STAMPED, ns(t), m.pose_stamped(ns(t), 'panda_link0', pose)))
    for k in range(int(duration_s * image_hz) + 1 if image_hz else 0):
        t = k / image_hz
        out.append((IMG, m.IMAGE, ns(t), m.image(ns(t), 'cam', np.full((6, 8, 3), k, np.uint8))))
        depth = np.full((6, 8), 0.5 + k / 100, np.float32)
        depth[0, 0] = np.nan  # a pixel without a return, as real depth cameras report it
        out.append((DEPTH, m.IMAGE, ns(t), m.image(ns(t), 'cam', depth)))
    return sorted(out, key=lambda r: r[2])


def record(recorder, records, success=True, discard=False):
    """Write one episode through the real recorder."""
    recorder.start_episode()
    for topic, _, stamp, msg in records:
        recorder.write(topic, stamp, msg)
    if discard:
        return recorder.discard_episode()
    return recorder.stop_episode(success=success)


@pytest.fixture
def recorded(tmp_path) -> Path:
    """Record an output dir: 2 good episodes, 1 discarded, 1 interrupted."""
    out = tmp_path / 'demos'
    with DatasetRecorder(out, 'panda', JOINTS, TOPICS, {'control_rate_hz': 20.0}, 'lift',
                         action_topic=CMD) as rec:
        record(rec, episode_records(), success=True)
        record(rec, episode_records(2.0), success=False)
        record(rec, episode_records(), discard=True)
        rec.start_episode()
        for topic, _, stamp, msg in episode_records():
            rec.write(topic, stamp, msg)
    return out


def test_recorder_directory_keeps_complete_episodes_and_reports_the_rest(recorded):
    ds = build_dataset(recorded)
    # The failed episode is left out by default, and reported with the option that keeps it.
    assert [e.name for e in ds.episodes] == ['episode_000000']
    assert [e.success for e in ds.episodes] == [True]
    reasons = {e.name: e.reason for e in ds.exclusions}
    assert set(reasons) == {'episode_000001', 'episode_000002', 'episode_000003'}
    assert [(e.kind, e.option) for e in ds.exclusions] == [
        ('failed outcome', '--include-failures'), ('discarded episode', ''),
        ('interrupted episode', '--include-interrupted')]
    assert 'discarded' in reasons['episode_000002']
    assert 'interrupted' in reasons['episode_000003']
    assert ds.joint_names == JOINTS and ds.rate_hz == 20.0
    # The recorder keeps interrupted episodes so that the operator can choose to use them.
    more = build_dataset(recorded, include_interrupted=True, include_failures=True)
    assert [e.name for e in more.episodes] == ['episode_000000', 'episode_000001',
                                               'episode_000003']
    assert [e.success for e in more.episodes] == [True, False, None]
    assert more.episodes[1].duration_s == pytest.approx(len(more.episodes[1]) / 20.0)


def test_a_dataset_builds_at_the_rate_its_dataset_yaml_recorded(recorded):
    index = yaml.safe_load((recorded / 'dataset.yaml').read_text())
    index['rates']['control_rate_hz'] = 10.0
    (recorded / 'dataset.yaml').write_text(yaml.safe_dump(index))
    ds = build_dataset(recorded)
    assert ds.rate_hz == 10.0 and ds.robot == 'panda'
    assert len(ds.episodes[0]) == pytest.approx(ds.episodes[0].duration_s * 10.0)
    assert build_dataset(recorded, rate_hz=20.0).rate_hz == 20.0  # unless told otherwise


def test_alignment_matches_analytic_signals(recorded):
    ep = build_dataset(recorded).episodes[0]
    steps = len(ep)
    # The grid starts at the first command (the last required topic to appear).
    t = CMD_OFFSET_S + np.arange(steps) / 20.0
    assert steps == int((3.0 - CMD_OFFSET_S) * 20) + 1
    # Linear interpolation of 100 Hz samples: error <= h^2/8 * max|f''| ~ 1e-5.
    np.testing.assert_allclose(ep.obs['joint_pos'], joint_pos(t)[:, :8], atol=2e-5)
    np.testing.assert_allclose(ep.obs['joint_vel'], joint_vel(t)[:, :8], atol=2e-5)
    np.testing.assert_allclose(ep.obs['gripper_width'][:, 0], 2 * joint_pos(t)[:, 7], atol=2e-5)
    # Commands at 10 Hz, samples at 20 Hz: command i governs samples 2i and 2i+1; command i+1
    # arrives exactly at sample 2i+2, which is not strictly before it.
    expected = np.stack([command(k // 2) for k in range(steps)])
    np.testing.assert_allclose(ep.action, expected, atol=1e-6)
    # Slerp is exact for a constant rotation rate; the stored order is w-first.
    np.testing.assert_allclose(ep.obs['object_pose'][:, 0], t, atol=1e-6)
    np.testing.assert_allclose(ep.obs['object_pose'][:, 3:],
                               np.stack([object_quat(x) for x in t]), atol=1e-6)
    for key, value in ep.obs.items():
        assert value.dtype == np.float32, key
    assert ep.action.shape == (steps, 8) and ep.action.dtype == np.float32


def test_command_jitter_holds_the_last_command_before_the_next_sample(tmp_path):
    rng = np.random.default_rng(0)
    cmd_times = np.sort(rng.uniform(0.0, 2.0, 37))
    records = [r for r in episode_records(2.0, pose_hz=0) if r[0] != CMD]
    records += [(CMD, m.FLOAT64_ARRAY, ns(t), m.float64_array(command(i)))
                for i, t in enumerate(cmd_times)]
    from lam_ros.data.bags.writer import write_bag
    write_bag(tmp_path / 'bags' / 'ep', records)
    ep = build_dataset(tmp_path / 'bags', rate_hz=20.0, max_gap_s=1.0).episodes[0]
    t = cmd_times[0] + np.arange(len(ep)) / 20.0
    for k in range(len(ep)):
        governing = np.flatnonzero(cmd_times < t[k] + 0.05 - 1e-9)[-1]
        np.testing.assert_allclose(ep.action[k], command(governing), atol=1e-6)
    assert 'object_pose' not in ep.obs


def test_images_are_the_most_recent_frame(tmp_path):
    from lam_ros.data.bags.writer import write_bag
    outcome = [(OK, m.BOOL, ns(1.0), m.bool_msg(False)), (OK, m.BOOL, ns(1.9), m.bool_msg(True))]
    write_bag(tmp_path / 'ep', episode_records(2.0, image_hz=7) + outcome)
    ds = build_dataset(tmp_path / 'ep', rate_hz=20.0)
    ep = ds.episodes[0]
    assert ep.success is True  # a plain bag's outcome: the last value on the success topic
    assert ds.observation_spec()['scene_rgb'] == (6, 8, 3)
    assert ep.obs['scene_rgb'].dtype == np.uint8
    t = CMD_OFFSET_S + np.arange(len(ep)) / 20.0
    np.testing.assert_array_equal(ep.obs['scene_rgb'][:, 0, 0, 0], np.floor(t * 7 + 1e-9))
    assert ds.stats['scene_rgb']['mean'].shape == (3,)
    assert ds.observation_spec()['scene_depth'] == (6, 8, 1)
    np.testing.assert_allclose(ep.obs['scene_depth'][:, 1, 1, 0],
                               0.5 + np.floor(t * 7 + 1e-9) / 100, rtol=1e-6)
    assert np.all(ep.obs['scene_depth'][:, 0, 0, 0] == 0.0)


def _bad_bags(root):
    from lam_ros.data.bags.writer import write_bag
    write_bag(root / 'good', episode_records(2.0))
    write_bag(root / 'short_cmd', episode_records(
        2.0, cmd_fn=lambda i: command(i)[:7] if i == 5 else command(i)))

    def nan_pos(t):
        p = joint_pos(t)
        if abs(t - 1.0) < 1e-9:
            p[2] = np.nan
        return p
    write_bag(root / 'nan', episode_records(2.0, pos_fn=nan_pos))
    write_bag(root / 'missing_joint', episode_records(
        2.0, names=ALL[:3] + ['elbow'] + ALL[4:]))
    write_bag(root / 'gap', episode_records(3.0, skip=lambda topic, t: topic == JS
                                            and 1.0 < t < 1.8))
    write_bag(root / 'short', episode_records(0.5))
    write_bag(root / 'no_commands', [r for r in episode_records(2.0) if r[0] != CMD])
    write_bag(root / 'no_object', [r for r in episode_records(2.0) if r[0] != OBJ])
    zero_quat = m.pose_stamped(ns(1.0), 'panda_link0', [0, 0, 0, 1, 0, 0, 0])
    zero_quat.pose.orientation.w = 0.0
    write_bag(root / 'bad_quat', episode_records(2.0) + [(OBJ, m.POSE_STAMPED, ns(1.0) + 1,
                                                          zero_quat)])


def test_malformed_episodes_are_excluded_with_reasons(tmp_path):
    _bad_bags(tmp_path)
    ds = build_dataset(tmp_path, min_duration_s=1.0)
    assert [e.name for e in ds.episodes] == ['good']
    reasons = {e.name: e.reason for e in ds.exclusions}
    assert 'expected 8' in reasons['short_cmd'] and '7 values' in reasons['short_cmd']
    assert 'NaN' in reasons['nan'] and 'joint_pos' in reasons['nan']
    assert "['panda_joint4']" in reasons['missing_joint']
    assert 'silent for 0.8' in reasons['gap'] and 'joint_pos' in reasons['gap']
    assert 'too short' in reasons['short']
    assert CMD in reasons['no_commands']
    assert OBJ in reasons['no_object']
    assert 'object_pose has a quaternion of norm 0.000' in reasons['bad_quat']
    assert len(reasons) == 8


def test_stats_cover_included_episodes_with_floored_std(recorded):
    ds = build_dataset(recorded, std_floor=1e-3)
    for key in list(ds.observation_spec()) + ['action']:
        values = np.concatenate([ep.obs[key] if key != 'action' else ep.action
                                 for ep in ds.episodes]).astype(np.float64)
        st = ds.stats[key]
        np.testing.assert_allclose(st['mean'], values.mean(0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(st['std'], np.maximum(values.std(0), 1e-3), rtol=1e-4,
                                   atol=1e-6)
        np.testing.assert_allclose(st['min'], values.min(0), atol=1e-6)
        np.testing.assert_allclose(st['max'], values.max(0), atol=1e-6)
    # The object's y, z never change: their std is the floor, not zero.
    np.testing.assert_allclose(ds.stats['object_pose']['std'][1:3], 1e-3)


def test_mapping_from_dataset_yaml_switches_off_unrecorded_topics(recorded):
    from lam_ros.data.bags.reader import mapping_for_source
    mapping = mapping_for_source(recorded)
    assert mapping.command_topic == CMD and mapping.joint_names == JOINTS
    assert mapping.goal_pose_topic is None and mapping.cameras == {}
    with open(recorded / 'dataset.yaml') as f:
        assert yaml.safe_load(f)['topics']['object_pose'] == OBJ


def test_build_rejects_bad_arguments(tmp_path, recorded):
    with pytest.raises(ValueError, match='rate_hz'):
        build_dataset(recorded, rate_hz=0.0)
    with pytest.raises(ValueError, match='does not exist'):
        build_dataset(tmp_path / 'nowhere')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(ValueError, match='no rosbag2 bags'):
        build_dataset(tmp_path / 'empty')
    with pytest.raises(ValueError, match='command_joint_names'):
        TopicMapping(command_joint_names=JOINTS[:7])


def test_observations_match_the_env_so_a_policy_runs_unchanged(recorded):
    from lam_ros.sim import make_env, PandaKinematics
    from lam_ros.sim.robot import JOINT_NAMES
    kin = PandaKinematics()

    def fk(q):
        return np.stack([np.concatenate(kin.fk(row[:7])) for row in q])

    ds = build_dataset(recorded, ee_pose_fn=fk)
    kin.close()
    env = make_env('lift')
    try:
        space = env.observation_space
        assert list(JOINT_NAMES) == ds.joint_names
        assert set(ds.observation_spec()) == set(space.spaces)
        for key, shape in ds.observation_spec().items():
            assert space[key].shape == shape, key
            assert space[key].dtype == ds.episodes[0].obs[key].dtype, key
        assert env.action_space.shape == (ds.action_dim,)
    finally:
        env.close()


def test_any_number_of_cameras_on_any_topics_are_read_and_resized(tmp_path):
    """Two cameras named in the mapping, each encoded its own way, resized to 12x16."""
    from lam_ros.data.bags.writer import write_bag
    records = episode_records(2.0)
    for k in range(21):  # 10 Hz cameras
        t = k / 10
        bgr = np.zeros((48, 64, 3), np.uint8)
        bgr[..., 2] = 10 * k  # red in BGR order
        records.append(('/front/color', m.IMAGE, ns(t), m.image(ns(t), 'front', bgr, 'bgr8')))
        mono = np.full((30, 40, 1), 5 * k, np.uint8)
        records.append(('/hand/mono', m.IMAGE, ns(t), m.image(ns(t), 'hand', mono, 'mono8')))
        mm = np.full((30, 40, 1), 400 + k, np.uint16)
        records.append(('/hand/depth', m.IMAGE, ns(t), m.image(ns(t), 'hand', mm, '16UC1')))
    write_bag(tmp_path / 'ep', sorted(records, key=lambda r: r[2]))
    mapping = TopicMapping(cameras={'front': {'rgb': '/front/color'},
                                    'hand': {'rgb': '/hand/mono', 'depth': '/hand/depth'}})
    ds = build_dataset(tmp_path / 'ep', mapping, rate_hz=20.0, image_size=(12, 16))
    spec = ds.observation_spec()
    assert (spec['front_rgb'], spec['hand_rgb'], spec['hand_depth']) == (
        (12, 16, 3), (12, 16, 3), (12, 16, 1))
    assert not [k for k in spec if k.startswith('scene_')]
    ep = ds.episodes[0]
    assert ep.obs['front_rgb'].dtype == np.uint8 and ep.obs['hand_rgb'].dtype == np.uint8
    assert ep.obs['hand_depth'].dtype == np.float32
    # Each grid step holds the most recent frame of each camera, converted.
    t = CMD_OFFSET_S + np.arange(len(ep)) / 20.0
    frame = np.floor(t * 10 + 1e-9)
    np.testing.assert_array_equal(ep.obs['front_rgb'][:, 5, 5, 0], 10 * frame)
    assert np.all(ep.obs['front_rgb'][..., 2] == 0)
    np.testing.assert_array_equal(ep.obs['hand_rgb'][:, 3, 3, 1], 5 * frame)
    np.testing.assert_allclose(ep.obs['hand_depth'][:, 0, 0, 0], (400 + frame) / 1000.0,
                               rtol=1e-6)
    # Without a size the recorded sizes stay.
    spec = build_dataset(tmp_path / 'ep', mapping, rate_hz=20.0).observation_spec()
    assert spec['front_rgb'] == (48, 64, 3) and spec['hand_depth'] == (30, 40, 1)


def test_mapping_yaml_names_cameras_and_rejects_bad_entries(tmp_path):
    path = tmp_path / 'mapping.yaml'
    path.write_text('cameras:\n  scene: {rgb: /cam/color, depth: null}\n  wrist: /w/rgb\n')
    mapping = TopicMapping.from_yaml(path)
    assert mapping.cameras == {'scene': {'depth': None, 'rgb': '/cam/color'},
                               'wrist': {'rgb': '/w/rgb'}}
    topics = mapping.observation_topics()
    assert topics['scene_rgb'] == '/cam/color' and topics['wrist_rgb'] == '/w/rgb'
    assert 'scene_depth' not in topics
    for bad, words in (({'Scene': {'rgb': '/a'}}, 'lower-case identifier'),
                       ({'scene': {'ir': '/a'}}, 'rgb and/or depth'),
                       ({'scene': {'rgb': 'relative'}}, 'absolute topic')):
        with pytest.raises(ValueError, match=words):
            TopicMapping(cameras=bad)
    default = TopicMapping().observation_topics()
    assert default['wrist_depth'] == '/wrist_camera/depth/image_raw'


def test_a_demos_recording_with_two_cameras_builds_at_the_policy_size(tmp_path):
    """lam-ros demos --cameras scene,wrist: dataset.yaml says which cameras were recorded."""
    from lam_ros.data.bags.reader import mapping_for_source
    from lam_ros.data.recording.demos import DemoConfig, record_demos
    out = tmp_path / 'demos'
    record_demos(DemoConfig(task='lift', episodes=2, seed=0, cameras=('scene', 'wrist'),
                            camera_width=40, camera_height=30, camera_rate_hz=20.0), out)
    mapping = mapping_for_source(out)
    assert mapping.cameras == {'scene': {'rgb': '/scene_camera/image_raw'},
                               'wrist': {'rgb': '/wrist_camera/image_raw'}}
    ds = build_dataset(out, image_size=(24, 24))
    assert len(ds.episodes) == 2
    spec = ds.observation_spec()
    assert spec['scene_rgb'] == (24, 24, 3) and spec['wrist_rgb'] == (24, 24, 3)
    ep = ds.episodes[0]
    # A fresh frame at every policy step: the wrist view changes as the hand moves.
    changes = np.any(np.diff(ep.obs['wrist_rgb'].astype(int), axis=0) != 0, axis=(1, 2, 3))
    assert changes.mean() > 0.5
