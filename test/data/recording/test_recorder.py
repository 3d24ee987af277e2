"""Tests for lam_ros.data.recording.recorder: bag round trip, crash recovery, write errors."""

import hashlib
import os
from pathlib import Path
import resource
import signal
import subprocess
import sys
import textwrap
import time

from lam_ros.data import messages as m
from lam_ros.data.dataset.build import build_dataset
from lam_ros.data.recording.recorder import DatasetRecorder, RecordingError, recover_dataset
import numpy as np
import pytest
from rosbags.highlevel import AnyReader
import yaml

JOINTS9 = [f'panda_joint{i}' for i in range(1, 8)] + ['panda_finger_joint1',
                                                      'panda_finger_joint2']
JOINTS8 = JOINTS9[:8]
CMD = '/forward_position_controller/commands'
TOPICS = {'/joint_states': m.JOINT_STATE, CMD: m.FLOAT64_ARRAY,
          '/object_pose': m.POSE_STAMPED, '/task_success': m.BOOL}
REPO = Path(__file__).resolve().parents[3]


def _recorder(out: Path, **kwargs) -> DatasetRecorder:
    return DatasetRecorder(out, 'panda', JOINTS8, TOPICS, {'control_rate_hz': 20.0}, 'lift',
                           **kwargs)


def _record(rec: DatasetRecorder, steps: int, t0_ns: int = 0, success: bool = True) -> dict:
    rec.start_episode()
    for i in range(steps):
        t = t0_ns + i * 50_000_000
        rec.write('/joint_states', t, m.serialize(m.joint_state(t, JOINTS9, np.full(9, i))))
        rec.write(CMD, t + 1, m.float64_array(np.full(8, i + 0.5)))
        rec.write('/object_pose', t + 2, m.pose_stamped(t, 'panda_link0',
                                                        [0.5, 0, i, 1, 0, 0, 0]))
    rec.write('/task_success', t0_ns + steps * 50_000_000, m.bool_msg(success))
    return rec.stop_episode(success)


def _read_bag(bag: Path) -> dict:
    """Return topic -> list of (log time, message) read with rosbags' AnyReader."""
    out = {}
    with AnyReader([bag], default_typestore=m.TYPESTORE) as reader:
        for conn in reader.connections:
            out.setdefault(conn.topic, [])
        for conn, stamp, raw in reader.messages():
            out[conn.topic].append((stamp, reader.deserialize(raw, conn.msgtype)))
    return out


def _index(out: Path) -> dict:
    return yaml.safe_load((out / 'dataset.yaml').read_text())


def _digest(path: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.iterdir())}


def test_round_trip_read_back_with_anyreader(tmp_path: Path) -> None:
    """Episodes read back with the recorded counts, order, joint names and outcomes."""
    out = tmp_path / 'ds'
    with _recorder(out) as rec:
        first = _record(rec, 30, success=True)
        second = _record(rec, 10, t0_ns=10**9, success=False)
    assert first['name'] == 'episode_000000' and second['name'] == 'episode_000001'
    index = _index(out)
    assert index['robot'] == 'panda' and index['task'] == 'lift'
    assert index['joint_names'] == JOINTS8
    assert index['topics']['command'] == CMD and index['topics']['joint_state'] == '/joint_states'
    assert index['topic_types'] == TOPICS
    eps = index['episodes']
    assert [e['status'] for e in eps] == ['complete', 'complete']
    assert [e['success'] for e in eps] == [True, False]
    assert eps[0]['message_counts'] == {'/joint_states': 30, CMD: 30, '/object_pose': 30,
                                        '/task_success': 1}
    assert eps[0]['duration_s'] == pytest.approx(1.5)
    data = _read_bag(out / 'episode_000000')
    assert {t: len(v) for t, v in data.items()} == eps[0]['message_counts']
    stamps = [s for s, _ in data['/joint_states']]
    assert stamps == sorted(stamps) and len(set(stamps)) == 30
    assert list(data['/joint_states'][7][1].name) == JOINTS9
    np.testing.assert_array_equal(data[CMD][7][1].data, np.full(8, 7.5))
    assert data['/task_success'][0][1].data is True
    meta = yaml.safe_load((out / 'episode_000000' / 'metadata.yaml').read_text())
    info = meta['rosbag2_bagfile_information']
    assert info['version'] == 9 and info['storage_identifier'] == 'mcap'
    assert info['custom_data']['lam_ros.success'] == 'true'


@pytest.mark.parametrize('umask', [0o022, 0o027])
def test_dataset_files_get_the_umask_permissions(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        with _recorder(tmp_path / 'out') as rec:
            _record(rec, 3)
    finally:
        os.umask(old)
    files = [p for p in (tmp_path / 'out').rglob('*') if p.is_file() and 'lock' not in p.name]
    assert (tmp_path / 'out' / 'dataset.yaml') in files
    for path in files:
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path


def test_numbering_continues_and_nothing_is_overwritten(tmp_path: Path) -> None:
    """A new session appends after existing and discarded episodes; old bags stay bytewise."""
    out = tmp_path / 'ds'
    with _recorder(out) as rec:
        _record(rec, 5)
        rec.start_episode()
        rec.write('/joint_states', 1, m.joint_state(1, JOINTS9, np.zeros(9)))
        assert rec.discard_episode()['status'] == 'discarded'
    before = _digest(out / 'episode_000000')
    assert not (out / 'episode_000001').exists()
    with _recorder(out) as rec:
        assert rec.last_recovery.changed is False
        assert _record(rec, 5)['name'] == 'episode_000002'
    assert _digest(out / 'episode_000000') == before
    assert [e['status'] for e in _index(out)['episodes']] == ['complete', 'discarded',
                                                              'complete']


def test_wrong_state_and_bad_input_errors(tmp_path: Path) -> None:
    """Calls in the wrong state and bad arguments fail with actionable messages."""
    out = tmp_path / 'ds'
    with pytest.raises(ValueError, match='unknown message type'):
        DatasetRecorder(out, 'panda', JOINTS8, {'/x': 'foo/msg/Bar'}, {}, 'lift')
    with pytest.raises(ValueError, match='action_topic'):
        _recorder(out, action_topic='/missing')
    with _recorder(out) as rec:
        with pytest.raises(RuntimeError, match='start_episode'):
            rec.write('/joint_states', 0, m.bool_msg(True))
        with pytest.raises(RuntimeError, match='nothing to stop'):
            rec.stop_episode()
        rec.start_episode()
        with pytest.raises(RuntimeError, match='stop or discard'):
            rec.start_episode()
        with pytest.raises(ValueError, match='not recorded'):
            rec.write('/other', 0, m.bool_msg(True))
        with pytest.raises(RuntimeError, match='another recorder'):
            _recorder(out)
        rec.discard_episode()
    with pytest.raises(ValueError, match='robot'):
        DatasetRecorder(out, 'ur5', JOINTS8, TOPICS, {}, 'lift')
    (tmp_path / 'file').write_text('x')
    with pytest.raises((ValueError, RecordingError), match='file'):
        _recorder(tmp_path / 'file')


def test_close_saves_open_episode_as_interrupted(tmp_path: Path) -> None:
    """Closing mid-episode keeps the data, closed and readable, marked interrupted."""
    out = tmp_path / 'ds'
    rec = _recorder(out)
    rec.start_episode()
    for i in range(20):
        rec.write('/joint_states', i, m.joint_state(i, JOINTS9, np.zeros(9)))
    entry = rec.close()
    assert entry['status'] == 'interrupted' and entry['message_counts']['/joint_states'] == 20
    assert len(_read_bag(out / 'episode_000000')['/joint_states']) == 20


_CHILD = textwrap.dedent("""
    import sys, time
    import numpy as np
    from lam_ros.data import messages as m
    from lam_ros.data.recording.recorder import DatasetRecorder
    out, mode = sys.argv[1], sys.argv[2]
    joints = [f'panda_joint{i}' for i in range(1, 8)] + ['panda_finger_joint1',
                                                        'panda_finger_joint2']
    topics = {'/joint_states': m.JOINT_STATE, '/forward_position_controller/commands':
              m.FLOAT64_ARRAY, '/task_success': m.BOOL}
    rec = DatasetRecorder(out, 'panda', joints[:8], topics, {'control_rate_hz': 20.0}, 'lift',
                          flush_interval_s=0.1)
    def episode(steps, period_s, stop=True, say_at=None):
        rec.start_episode()
        t0 = time.time_ns()
        for i in range(steps):
            if i == say_at:
                print('streaming', flush=True)
            t = t0 + i * 20_000_000  # 50 Hz stamps, steady whatever the real pace
            rec.write('/joint_states', t, m.serialize(m.joint_state(t, joints, np.full(9, i))))
            rec.write('/forward_position_controller/commands', t, m.float64_array(np.zeros(8)))
            if period_s:
                time.sleep(period_s)
        if stop:
            rec.write('/task_success', t0 + steps * 20_000_000, m.bool_msg(True))
            rec.stop_episode(True)
    if mode == 'steady':
        episode(60, 0.0)
        episode(60, 0.0)
        print('ready', flush=True)
        episode(10**9, 0.002, say_at=300)
    else:
        print('ready', flush=True)
        while True:
            episode(40, 0.0)
""")


def _start_child(out: Path, mode: str) -> subprocess.Popen:
    script = out.parent / 'child.py'
    script.write_text(_CHILD)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, str(script), str(out), mode], env=env,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == 'ready'
    return proc


def _check_consistent(out: Path) -> list:
    """Every listed non-discarded episode with data reads back with the listed counts."""
    entries = _index(out)['episodes']
    for entry in entries:
        assert entry['status'] in ('complete', 'interrupted', 'discarded')
        bag = out / entry['name']
        if entry['status'] == 'complete' or entry.get('recovered'):
            data = _read_bag(bag)
            assert {t: len(v) for t, v in data.items() if v} == \
                {t: n for t, n in entry['message_counts'].items() if n}
            stamps = [s for s, _ in data['/joint_states']]
            assert stamps == sorted(stamps)
    return entries


def test_sigkill_mid_episode_keeps_finished_and_recovers_open(tmp_path: Path) -> None:
    """SIGKILL of a recording process: finished bags intact, the open one rebuilt."""
    out = tmp_path / 'ds'
    proc = _start_child(out, 'steady')
    # Kill once 300 messages of the open episode are written: whatever the machine's load,
    # all but the last flush interval's (0.1 s, at most 50 at the 2 ms pace) are on disk.
    assert proc.stdout.readline().strip() == 'streaming'
    before = _digest(out / 'episode_000000')
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert _index(out)['episodes'][2]['status'] == 'recording'
    report = recover_dataset(out)
    assert report.recovered == ['episode_000002']
    entries = _check_consistent(out)
    assert [e['status'] for e in entries] == ['complete', 'complete', 'interrupted']
    assert entries[2]['recovered'] is True
    assert entries[2]['message_counts']['/joint_states'] >= 250
    assert _digest(out / 'episode_000000') == before
    assert recover_dataset(out).changed is False
    with DatasetRecorder(out, 'panda', JOINTS8, {'/joint_states': m.JOINT_STATE}, {},
                         'lift') as rec:
        assert rec.start_episode() == 'episode_000003'
        rec.discard_episode()
    built = build_dataset(out)
    names = [ep.name for ep in built.episodes]
    assert 'episode_000000' in names and 'episode_000001' in names


@pytest.mark.parametrize('delay_s', [0.05, 0.23, 0.41, 0.77])
def test_sigkill_at_arbitrary_moments(tmp_path: Path, delay_s: float) -> None:
    """Killing a process that starts and stops episodes back to back never loses one."""
    out = tmp_path / 'ds'
    proc = _start_child(out, 'loop')
    # Some episodes have closed before the kill, whatever the load: the check is never empty.
    while sum(e['status'] == 'complete' for e in _index(out)['episodes']) < 2:
        assert proc.poll() is None
        time.sleep(0.01)
    time.sleep(delay_s)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    recover_dataset(out)
    entries = _check_consistent(out)
    assert len(entries) >= 3
    assert all(e['status'] == 'complete' for e in entries[:-1])
    assert all(e['message_counts']['/joint_states'] == 40 for e in entries[:-1])
    # The episode open at the kill is closed, or recovered, or listed as interrupted.
    assert entries[-1]['status'] in ('complete', 'interrupted')


def test_write_error_stops_episode_and_keeps_earlier(tmp_path: Path) -> None:
    """A file-size limit (like a full disk) raises RecordingError; earlier bags are intact."""
    out = tmp_path / 'ds'
    rec = _recorder(out, flush_interval_s=0.01)
    _record(rec, 5)
    before = _digest(out / 'episode_000000')
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    rec.start_episode()
    frame = m.float64_array(np.zeros(50_000))
    try:
        resource.setrlimit(resource.RLIMIT_FSIZE, (2_000_000, hard))
        with pytest.raises(RecordingError, match='episode_000001.*interrupted'):
            for i in range(200):
                rec.write(CMD, i, frame)
                time.sleep(0.002)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old_handler)
    assert not rec.recording
    entries = _index(out)['episodes']
    assert entries[1]['status'] == 'interrupted' and 'error' in entries[1]
    assert _digest(out / 'episode_000000') == before
    assert _record(rec, 3)['name'] == 'episode_000002'
    rec.close()
    assert len(_read_bag(out / 'episode_000000')['/joint_states']) == 5
    # the next session rebuilds what the failed episode got onto the disk
    report = recover_dataset(out)
    assert report.recovered == ['episode_000001']
    entry = _index(out)['episodes'][1]
    assert entry['status'] == 'interrupted' and entry['recovered'] is True
    # The frames written before the limit are back: each 400 kB, 2 MB allowed.
    assert len(_read_bag(out / 'episode_000001')[CMD]) == entry['message_counts'][CMD] >= 1


def _snapshot_open_episode(tmp_path: Path) -> Path:
    """Return a copy of an output dir taken while an episode is open: a crash's disk state."""
    import shutil
    out = tmp_path / 'live'
    rec = _recorder(out, flush_interval_s=0.01)
    _record(rec, 5)
    rec.start_episode()
    for i in range(300):
        rec.write('/joint_states', i * 1000, m.joint_state(i * 1000, JOINTS9, np.full(9, i)))
        if i % 100 == 99:
            time.sleep(0.02)  # let the flush interval pass so chunks reach the file
    crashed = tmp_path / 'crashed'
    shutil.copytree(out, crashed)
    rec.discard_episode()
    rec.close()
    return crashed


def test_repair_survives_truncation_at_any_byte(tmp_path: Path) -> None:
    """Cutting the open episode's MCAP anywhere yields a readable bag of a message prefix."""
    import shutil

    from lam_ros.data.recording.repair import repair_bag
    crashed = _snapshot_open_episode(tmp_path)
    mcap = crashed / 'episode_000001' / 'episode_000001.mcap'
    data = mcap.read_bytes()
    previous = 0
    for cut in sorted({0, 8, 20, len(data) // 3, len(data) // 2, len(data) - 1, len(data)}
                      | set(range(8, len(data), max(1, len(data) // 25)))):
        part = tmp_path / f'cut{cut}.mcap'
        part.write_bytes(data[:cut])
        dst = tmp_path / f'bag{cut}'
        try:
            counts = repair_bag(part, dst, m.TYPESTORE)
        except ValueError:
            assert cut < 8  # only a missing magic is not MCAP at all
            shutil.rmtree(dst, ignore_errors=True)
            continue
        got = _read_bag(dst).get('/joint_states', [])
        assert len(got) == counts.get('/joint_states', 0) >= previous
        assert [msg.position[0] for _, msg in got] == list(range(len(got)))
        previous = len(got)
    assert previous >= 200  # the flushed chunks of the 300 messages


def test_recovery_resumes_after_crash_during_recovery(tmp_path: Path) -> None:
    """A crash between parking the broken bag and swapping in the rebuilt one is undone."""
    crashed = _snapshot_open_episode(tmp_path)
    (crashed / '.lam_ros_recorder.lock').unlink()
    staging = crashed / '.recovery'
    staging.mkdir()
    (crashed / 'episode_000001').rename(staging / 'episode_000001.broken')
    (staging / 'episode_000001').mkdir()  # a half-written rebuilt copy
    (staging / 'episode_000001' / 'episode_000001.mcap').write_bytes(b'\x89MCAP0\r\n')
    report = recover_dataset(crashed)
    assert report.recovered == ['episode_000001']
    assert not staging.exists()
    entries = _check_consistent(crashed)
    assert entries[1]['status'] == 'interrupted'
    assert entries[1]['message_counts']['/joint_states'] >= 200
