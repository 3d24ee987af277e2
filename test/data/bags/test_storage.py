"""Bags as users have them: sqlite3 or MCAP, split into several files, compressed, or broken."""

import io
from pathlib import Path
import shutil

from lam_ros.data import messages as m
from lam_ros.data.bags.reader import EpisodeError, find_episodes, read_episode, TopicMapping
from lam_ros.data.bags.writer import write_bag
from lam_ros.data.dataset.build import build_dataset
import numpy as np
import pytest
from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer
import yaml

JOINTS = [f'panda_joint{i}' for i in range(1, 8)] + ['panda_finger_joint1']
JS, CMD = '/joint_states', '/forward_position_controller/commands'
BASE_NS = 1_764_600_000 * 10**9
SUFFIX = {'mcap': '.mcap', 'sqlite3': '.db3'}


def records(duration_s=2.0):
    """Joint states at 50 Hz (value = time) and commands at 20 Hz (value = index)."""
    out = []
    for k in range(int(duration_s * 50) + 1):
        stamp = BASE_NS + k * 20_000_000
        out.append((JS, m.JOINT_STATE, stamp, m.joint_state(stamp, JOINTS, [k / 50] * 8)))
    for i in range(int(duration_s * 20)):
        out.append((CMD, m.FLOAT64_ARRAY, BASE_NS + i * 50_000_000 + 1,
                    m.float64_array([float(i)] * 8)))
    return sorted(out, key=lambda r: r[2])


def mapping():
    """Joints and commands only."""
    return TopicMapping(joint_names=JOINTS, gripper_joints=[], object_pose_topic=None,
                        goal_pose_topic=None, cameras={})


def write_split(path: Path, recs, parts: int, storage: str) -> Path:
    """Write a bag split into ``parts`` files by time, as `ros2 bag record --max-bag-duration`."""
    chunks = np.array_split(np.arange(len(recs)), parts)
    path.mkdir()
    infos = []
    for i, idx in enumerate(chunks):
        part = write_bag(path.parent / f'{path.name}.part{i}', [recs[j] for j in idx], storage)
        name = f'{path.name}_{i}{SUFFIX[storage]}'
        shutil.move(str(next(part.glob(f'*{SUFFIX[storage]}'))), path / name)
        infos.append(yaml.safe_load((part / 'metadata.yaml').read_text())
                     ['rosbag2_bagfile_information'])
        infos[-1]['files'][0]['path'] = name
        shutil.rmtree(part)
    meta = infos[0]
    counts = {}
    for info in infos:
        for topic in info['topics_with_message_count']:
            name = topic['topic_metadata']['name']
            counts.setdefault(name, dict(topic, message_count=0))
            counts[name]['message_count'] += topic['message_count']
    start = min(i['starting_time']['nanoseconds_since_epoch'] for i in infos)
    end = max(i['starting_time']['nanoseconds_since_epoch'] + i['duration']['nanoseconds']
              for i in infos)
    meta.update(relative_file_paths=[i['files'][0]['path'] for i in infos],
                files=[i['files'][0] for i in infos],
                topics_with_message_count=list(counts.values()),
                message_count=sum(i['message_count'] for i in infos),
                starting_time={'nanoseconds_since_epoch': start},
                duration={'nanoseconds': end - start})
    (path / 'metadata.yaml').write_text(yaml.safe_dump({'rosbag2_bagfile_information': meta}))
    return path


def write_compressed(path: Path, recs, mode: CompressionMode) -> Path:
    """Write an MCAP bag compressed with zstd per file or per message."""
    writer = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
    writer.set_compression(mode, CompressionFormat.ZSTD)
    with writer:
        conns = {}
        for topic, msgtype, stamp, msg in recs:
            if topic not in conns:
                conns[topic] = writer.add_connection(topic, msgtype, typestore=m.TYPESTORE)
            writer.write(conns[topic], stamp, m.serialize(msg, msgtype))
    return path


def rechunk_mcap(bag: Path, compression: str) -> None:
    """Rewrite a bag's MCAP file with compressed chunks, as rosbag2's MCAP storage presets do."""
    from mcap.reader import make_reader
    from mcap.writer import CompressionType, Writer as McapWriter
    path = next(bag.glob('*.mcap'))
    out = io.BytesIO()
    writer = McapWriter(out, compression=CompressionType[compression.upper()])
    writer.start(profile='ros2', library='test')
    schemas, channels = {}, {}
    for schema, channel, message in make_reader(io.BytesIO(path.read_bytes())).iter_messages():
        if schema.id not in schemas:
            schemas[schema.id] = writer.register_schema(schema.name, schema.encoding,
                                                        schema.data)
        if channel.id not in channels:
            channels[channel.id] = writer.register_channel(
                channel.topic, channel.message_encoding, schemas[schema.id], channel.metadata)
        writer.add_message(channels[channel.id], message.log_time, message.data,
                           message.publish_time, message.sequence)
    writer.finish()
    path.write_bytes(out.getvalue())


def check(raw):
    """Every message of records() is there, in order."""
    np.testing.assert_allclose(raw.streams['joint_pos'].values[:, 0], np.arange(101) / 50)
    np.testing.assert_allclose(raw.streams['action'].values[:, 0], np.arange(40))


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_split_bags_read_as_one_episode(tmp_path, storage):
    bag = write_split(tmp_path / 'ep', records(), 3, storage)
    assert len(list(bag.glob(f'*{SUFFIX[storage]}'))) == 3
    check(read_episode(find_episodes(bag)[0], mapping()))


def test_a_humble_sqlite3_bag_is_read(tmp_path):
    bag = write_bag(tmp_path / 'ep', records(), storage='sqlite3')
    # Humble writes metadata version 5: no type hashes, no custom data, QoS as a YAML string.
    meta = yaml.safe_load((bag / 'metadata.yaml').read_text())
    info = meta['rosbag2_bagfile_information']
    info['version'] = 5
    for key in ('custom_data', 'ros_distro'):
        info.pop(key)
    for topic in info['topics_with_message_count']:
        topic['topic_metadata'].pop('type_description_hash')
        topic['topic_metadata']['offered_qos_profiles'] = ''
    (bag / 'metadata.yaml').write_text(yaml.safe_dump(meta))
    check(read_episode(find_episodes(bag)[0], mapping()))


@pytest.mark.parametrize('mode', [CompressionMode.FILE, CompressionMode.MESSAGE])
def test_zstd_compressed_bags_are_read(tmp_path, mode):
    bag = write_compressed(tmp_path / 'ep', records(), mode)
    if mode == CompressionMode.FILE:
        assert list(bag.glob('*.mcap.zstd'))
    check(read_episode(find_episodes(bag)[0], mapping()))


@pytest.mark.parametrize('compression', ['zstd', 'lz4'])
def test_mcap_files_with_compressed_chunks_are_read(tmp_path, compression):
    pytest.importorskip('mcap')
    bag = write_bag(tmp_path / 'ep', records())
    plain_size = next(bag.glob('*.mcap')).stat().st_size
    rechunk_mcap(bag, compression)
    assert next(bag.glob('*.mcap')).stat().st_size < plain_size
    check(read_episode(find_episodes(bag)[0], mapping()))


def _one_line_exclusion(root, name):
    ds = build_dataset(root, mapping())
    reasons = {e.name: e for e in ds.exclusions}
    assert name in reasons, ds.exclusions
    exclusion = reasons[name]
    assert exclusion.kind == 'unreadable' and '\n' not in exclusion.reason
    return ds, exclusion.reason


def test_what_cannot_be_read_is_one_line_naming_the_file_and_the_reason(tmp_path):
    write_bag(tmp_path / 'good', records())
    lz4 = write_bag(tmp_path / 'lz4', records())
    meta = yaml.safe_load((lz4 / 'metadata.yaml').read_text())
    meta['rosbag2_bagfile_information'].update(compression_format='lz4',
                                               compression_mode='FILE')
    (lz4 / 'metadata.yaml').write_text(yaml.safe_dump(meta))
    split = write_split(tmp_path / 'split', records(), 2, 'mcap')
    (split / 'split_1.mcap').unlink()
    ros1 = tmp_path / 'ros1'
    ros1.mkdir()
    (ros1 / 'demo.bag').write_bytes(b'#ROSBAG V2.0\n')
    ds, reason = _one_line_exclusion(tmp_path, 'lz4')
    assert [e.name for e in ds.episodes] == ['good'] and len(ds.exclusions) == 3
    assert reason.startswith(f'{lz4 / "metadata.yaml"}: cannot open the bag')
    assert "Compression format 'lz4' is not supported" in reason
    _, reason = _one_line_exclusion(tmp_path, 'split')
    assert 'split_1.mcap' in reason and 'missing' in reason
    _, reason = _one_line_exclusion(tmp_path, 'ros1')
    assert 'demo.bag: a ROS 1 bag' in reason and 'rosbags-convert' in reason


def test_a_single_bag_without_metadata_is_named(tmp_path):
    bag = write_bag(tmp_path / 'ep', records())
    (bag / 'metadata.yaml').unlink()
    (entry,) = find_episodes(bag)
    with pytest.raises(EpisodeError, match=r'ep.mcap but no metadata.yaml .*ros2 bag reindex'):
        read_episode(entry, mapping())
