"""Dataset cache: safetensors round trip, stale-cache rebuild, observation-spec check; the CLI."""

import os
from pathlib import Path
import sys

from lam_ros.cli import main as lam_ros_main
from lam_ros.data import messages as m
from lam_ros.data.bags.writer import write_bag
from lam_ros.data.dataset.build import build_dataset, Dataset, load_or_build
import numpy as np
import pytest

JOINTS = [f'panda_joint{i}' for i in range(1, 8)] + ['panda_finger_joint1', 'panda_finger_joint2']
BASE_NS = 1_764_400_000 * 10**9


def write_episode(path: Path, duration_s: float = 2.0, phase: float = 0.0,
                  with_object: bool = True) -> Path:
    """Write a bag with 100 Hz joint states, 20 Hz commands and a 30 Hz object pose."""
    records = []
    for k in range(int(duration_s * 100) + 1):
        t = k / 100
        stamp = BASE_NS + k * 10_000_000
        pos = 0.3 * np.sin(t + phase + np.arange(9))
        records.append(('/joint_states', m.JOINT_STATE, stamp,
                        m.joint_state(stamp, JOINTS, pos, np.zeros(9))))
        if k % 5 == 2:
            records.append(('/forward_position_controller/commands', m.FLOAT64_ARRAY, stamp,
                            m.float64_array(pos[:8] + 0.01)))
        if with_object and k % 3 == 0:
            records.append(('/object_pose', m.POSE_STAMPED, stamp,
                            m.pose_stamped(stamp, 'panda_link0', [t, 0, 0, 1, 0, 0, 0])))
    return write_bag(path, records)


@pytest.fixture
def bags(tmp_path) -> Path:
    """Write a folder of two plain bags."""
    write_episode(tmp_path / 'bags' / 'a')
    write_episode(tmp_path / 'bags' / 'b', 2.5, phase=1.0)
    return tmp_path / 'bags'


@pytest.mark.parametrize('umask', [0o022, 0o027])
def test_cache_file_gets_the_umask_permissions(bags, tmp_path, umask):
    old = os.umask(umask)
    try:
        build_dataset(bags).save(tmp_path / 'cache.safetensors')
    finally:
        os.umask(old)
    assert (tmp_path / 'cache.safetensors').stat().st_mode & 0o777 == 0o666 & ~umask


def test_save_load_round_trip(bags, tmp_path):
    ds = build_dataset(bags)
    ds.save(tmp_path / 'cache.safetensors')
    back = Dataset.load(tmp_path / 'cache.safetensors')
    assert back.joint_names == ds.joint_names and back.rate_hz == ds.rate_hz
    assert back.observation_spec() == ds.observation_spec()
    assert back.fingerprint == ds.fingerprint and back.mapping == ds.mapping
    assert back.robot == ds.robot
    for a, b in zip(ds.episodes, back.episodes):
        assert (a.name, a.success, a.duration_s) == (b.name, b.success, b.duration_s)
        np.testing.assert_array_equal(a.action, b.action)
        for key in a.obs:
            np.testing.assert_array_equal(a.obs[key], b.obs[key])
    for key, entry in ds.stats.items():
        for stat, value in entry.items():
            np.testing.assert_array_equal(back.stats[key][stat], value)


def test_stale_cache_is_rebuilt(bags, tmp_path):
    cache = tmp_path / 'cache.safetensors'
    first, cached = load_or_build(bags, cache)
    assert not cached and cache.is_file() and len(first.episodes) == 2
    again, cached = load_or_build(bags, cache)
    assert cached and again.fingerprint == first.fingerprint
    write_episode(bags / 'c', 1.5)
    grown, cached = load_or_build(bags, cache)
    assert not cached and [e.name for e in grown.episodes] == ['a', 'b', 'c']
    # Other build settings make another dataset, so the cache is stale too.
    slower, cached = load_or_build(bags, cache, rate_hz=10.0)
    assert not cached and slower.rate_hz == 10.0
    assert Dataset.load(cache).rate_hz == 10.0


def test_changed_bag_file_makes_the_cache_stale(bags, tmp_path):
    cache = tmp_path / 'cache.safetensors'
    load_or_build(bags, cache)
    metadata = bags / 'a' / 'metadata.yaml'
    stat = metadata.stat()
    os.utime(metadata, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert not load_or_build(bags, cache)[1]


def test_wrong_observation_spec_or_foreign_file_is_a_clear_error(bags, tmp_path):
    cache = tmp_path / 'cache.safetensors'
    build_dataset(bags).save(cache)
    spec = Dataset.load(cache).observation_spec()
    assert Dataset.load(cache, observation_spec=spec).episodes
    # A policy may observe a subset of the cached keys.
    assert Dataset.load(cache, observation_spec={'joint_pos': [8]}).episodes
    wrong = dict(spec, object_pose=(3,), goal_pose=(7,))
    with pytest.raises(ValueError, match=r"'object_pose' has shape \(7,\), expected \(3,\); "
                                         r"'goal_pose' is missing"):
        Dataset.load(cache, observation_spec=wrong)
    with pytest.raises(ValueError, match="'scene_rgb' is missing"):
        load_or_build(bags, cache, observation_spec={'scene_rgb': (6, 8, 3)})
    (tmp_path / 'junk.safetensors').write_bytes(b'not a cache')
    with pytest.raises(ValueError, match='not a lam_ros dataset cache'):
        Dataset.load(tmp_path / 'junk.safetensors')


def test_cli_build_info_and_plot(bags, tmp_path, capsys):
    cache = tmp_path / 'out' / 'demo.safetensors'
    write_episode(bags / 'no_object', 2.0, with_object=False)
    assert lam_ros_main(['dataset', 'build', str(bags), '--out', str(cache),
                         '--rate-hz', '10']) == 0
    out = capsys.readouterr().out
    assert 'episodes: 2 included, 1 excluded' in out and 'wrote' in out
    assert 'no_object: missing observations' in out
    assert lam_ros_main(['dataset', 'build', str(bags), '--out', str(cache),
                         '--rate-hz', '10']) == 0
    assert 'cache up to date' in capsys.readouterr().out
    plot = tmp_path / 'plot.png'
    assert lam_ros_main(['dataset', 'info', str(cache), '--plot', str(plot)]) == 0
    out = capsys.readouterr().out
    assert 'panda_joint1' in out and 'at 10 Hz' in out
    assert plot.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert lam_ros_main(['dataset', 'info', str(tmp_path / 'missing')]) == 2
    assert 'does not exist' in capsys.readouterr().err


def test_cli_mapping_file_errors_are_reported(bags, tmp_path, capsys):
    mapping = tmp_path / 'mapping.yaml'
    mapping.write_text('joint_state_topics: /x\n')
    assert lam_ros_main(['dataset', 'info', str(bags), '--mapping', str(mapping)]) == 2
    assert 'unknown topic mapping keys' in capsys.readouterr().err


def test_cli_replay_without_rclpy_says_what_to_install(bags, monkeypatch, capsys):
    # A None entry in sys.modules makes the import fail as on a machine without ROS.
    monkeypatch.setitem(sys.modules, 'lam_ros.nodes.replay_node', None)
    assert lam_ros_main(['dataset', 'replay', str(bags), '--episode', 'a']) == 1
    assert 'replay needs rclpy' in capsys.readouterr().err
    assert lam_ros_main(['dataset', 'replay', str(bags), '--episode', 'zz']) == 2
    assert "no episode 'zz'" in capsys.readouterr().err
