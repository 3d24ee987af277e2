"""Tests for lam_ros.data.recording.demos and the ``lam-ros demos`` command."""

from pathlib import Path

from lam_ros.cli import main as cli_main
from lam_ros.data import messages as m
from lam_ros.data.dataset.build import build_dataset
from lam_ros.data.recording.demos import DemoConfig, record_demos
import numpy as np
import pytest
from rosbags.highlevel import AnyReader
import yaml

COMMAND_TOPIC = '/forward_position_controller/commands'


def _read(bag: Path) -> dict:
    out = {}
    with AnyReader([bag], default_typestore=m.TYPESTORE) as reader:
        for conn, stamp, raw in reader.messages():
            out.setdefault(conn.topic, []).append((stamp, reader.deserialize(raw, conn.msgtype)))
    return out


def test_demos_write_recorder_bags_with_sim_time(tmp_path: Path) -> None:
    """Expert episodes become bags with the recorder's topics, sim-time stamps and outcome."""
    out = tmp_path / 'demos'
    seen = []
    summary = record_demos(DemoConfig(task='pick_place', episodes=1, seed=3, cameras='scene',
                                      camera_width=32, camera_height=24),
                           out, on_episode=lambda i, ok: seen.append((i, ok)))
    assert summary['episodes'] == 1 and seen == [(0, summary['successes'] == 1)]
    index = yaml.safe_load((out / 'dataset.yaml').read_text())
    entry = index['episodes'][0]
    assert index['task'] == 'pick_place' and index['topics']['command'] == COMMAND_TOPIC
    assert entry['status'] == 'complete'
    data = _read(out / 'episode_000000')
    assert set(data) == {'/joint_states', COMMAND_TOPIC, '/object_pose', '/goal_pose',
                         '/task_success', '/scene_camera/image_raw', '/scene_camera/camera_info'}
    assert {t: len(v) for t, v in data.items()} == entry['message_counts']
    state_stamps = [s for s, _ in data['/joint_states']]
    assert state_stamps[0] == 0 and state_stamps == sorted(state_stamps)
    # 100 Hz joint states in simulated time, with the header stamp equal to the log time
    assert np.median(np.diff(state_stamps)) == pytest.approx(1e7, rel=0.3)
    stamp, js = data['/joint_states'][5]
    assert m.stamp_to_ns(js.header.stamp) == stamp and len(js.name) == 9
    assert len(data[COMMAND_TOPIC][0][1].data) == 8
    assert entry['duration_s'] == pytest.approx(len(data[COMMAND_TOPIC]) / 20.0, abs=0.1)
    assert data['/task_success'][-1][1].data is entry['success']
    image = data['/scene_camera/image_raw'][0][1]
    assert (image.width, image.height, image.encoding) == (32, 24, 'rgb8')
    assert data['/scene_camera/camera_info'][0][1].k[0] > 0
    # The expert succeeds on this seed; the episode builds with the camera and the goal.
    assert entry['success'] is True and summary['successes'] == 1
    built = build_dataset(out)
    assert [ep.name for ep in built.episodes] == ['episode_000000'] and not built.exclusions
    episode = built.episodes[0]
    assert episode.success is True
    assert episode.obs['scene_rgb'].shape[1:] == (24, 32, 3)
    assert episode.obs['goal_pose'].shape[1:] == (7,)
    # One action per command, and at most one more: the closing state sample, after the last
    # command, holds it.
    commands = np.array([msg.data for _, msg in data[COMMAND_TOPIC]])
    assert len(commands) <= len(episode.action) <= len(commands) + 1
    np.testing.assert_allclose(episode.action[-1], commands[-1], atol=1e-6)


def test_cli_appends_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """``lam-ros demos`` prints episodes/min and success and appends to a dataset."""
    out = tmp_path / 'demos'
    args = ['demos', '--task', 'lift', '--episodes', '1', '--seed', '0', '--output', str(out)]
    assert cli_main(args) == 0
    assert cli_main(args[:6] + ['1'] + args[7:]) == 0
    text = capsys.readouterr().out
    assert 'episodes/min' in text and 'success 1/1' in text
    index = yaml.safe_load((out / 'dataset.yaml').read_text())
    assert [e['name'] for e in index['episodes']] == ['episode_000000', 'episode_000001']
    assert cli_main(['demos', '--task', 'lift', '--episodes', '0', '--output', str(out)]) == 2
    assert 'episodes must be >= 1' in capsys.readouterr().err
    assert cli_main(['demos', '--task', 'pick_place', '--episodes', '1',
                     '--output', str(out)]) == 1
    assert "task='lift'" in capsys.readouterr().err


def test_cli_records_the_cameras_asked_for(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """``--cameras scene,wrist --depth``: each camera's rgb8, 32FC1 and info in its namespace."""
    out = tmp_path / 'demos'
    assert cli_main(['demos', '--task', 'lift', '--episodes', '1', '--output', str(out),
                     '--cameras', 'scene,wrist', '--depth', '--camera-size', '16', '12',
                     '--camera-rate', '20']) == 0
    data = _read(out / 'episode_000000')
    commands = len(data[COMMAND_TOPIC])
    for cam in ('scene', 'wrist'):
        image = data[f'/{cam}_camera/image_raw'][-1][1]
        depth = data[f'/{cam}_camera/depth/image_raw'][-1][1]
        assert (image.width, image.height, image.encoding) == (16, 12, 'rgb8')
        assert (depth.width, depth.height, depth.encoding) == (16, 12, '32FC1')
        assert image.header.frame_id == f'{cam}_camera_optical_frame'
        assert data[f'/{cam}_camera/camera_info'][-1][1].width == 16
        # 20 Hz frames alongside 20 Hz commands
        assert abs(len(data[f'/{cam}_camera/image_raw']) - commands) <= 2
    index = yaml.safe_load((out / 'dataset.yaml').read_text())
    assert index['rates']['wrist_camera_rate_hz'] == 20.0
    capsys.readouterr()
    assert cli_main(['demos', '--task', 'lift', '--episodes', '1', '--output', str(out),
                     '--cameras', 'scene,top']) == 2
    assert "unknown cameras ['top']" in capsys.readouterr().err


def test_miss_fraction_spreads_the_recoveries_and_is_checked() -> None:
    from lam_ros.data.recording.demos import misses_first_grasp
    assert [i for i in range(10) if misses_first_grasp(i, 0.3)] == [3, 6, 9]
    assert not any(misses_first_grasp(i, 0.0) for i in range(10))
    assert all(misses_first_grasp(i, 1.0) for i in range(10))
    for bad in (-0.1, 1.5, float('nan')):
        with pytest.raises(ValueError, match='miss_fraction'):
            DemoConfig(miss_fraction=bad)
