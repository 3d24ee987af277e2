"""
SIGKILL a recording process at random moments; every restart leaves a readable dataset.

A child process records 1 kHz joint states into one output directory and takes ``start`` /
``stop`` commands on stdin. The test kills it in an episode's first 50 ms, later in an
episode, while ``start_episode`` runs and right after ``stop_episode`` returns, then starts
a new child on the same directory. At the end no finished episode is lost, every episode
directory opens with ``rosbags`` (or sits in ``quarantine/`` with the reason in
``dataset.yaml``), and no temporary file is left.
"""

import os
from pathlib import Path
import random
import signal
import subprocess
import sys
import time

from lam_ros.data import messages
from lam_ros.data.recording.recorder import DatasetRecorder
from rosbags.highlevel import AnyReader
import yaml

ROOT = Path(__file__).resolve().parents[3]
JOINTS = [f'panda_joint{i}' for i in range(1, 8)] + ['panda_finger_joint1']
TOPICS = {'/joint_states': messages.JOINT_STATE}

CHILD = """
import sys, threading, time
from lam_ros.data import messages
from lam_ros.data.recording.recorder import DatasetRecorder
rec = DatasetRecorder(sys.argv[1], 'panda', {joints!r}, {topics!r}, {{}}, 'lift',
                      flush_interval_s=0.1)
raw = messages.serialize(messages.ROSBAGS.joint_state(0, {joints!r}, [0.0] * 8, [], []),
                         messages.JOINT_STATE)
def feed():
    t = time.time_ns()
    while True:
        t += 1_000_000
        if rec.recording:
            try:
                rec.write('/joint_states', t, raw)
            except RuntimeError:
                pass
        time.sleep(0.001)
threading.Thread(target=feed, daemon=True).start()
print('ready', flush=True)
for line in sys.stdin:
    if line.strip() == 'start':
        print('started', rec.start_episode(), flush=True)
    elif line.strip() == 'stop':
        print('stopped', rec.stop_episode(True)['name'], flush=True)
"""


class Child:
    """One recording process on ``out``."""

    def __init__(self, out: Path) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep
                   + os.environ.get('PYTHONPATH', ''))
        code = CHILD.format(joints=JOINTS, topics=TOPICS)
        self.proc = subprocess.Popen([sys.executable, '-c', code, str(out)], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)
        assert self.read() == 'ready', self.proc.stderr.read()

    def read(self) -> str:
        line = self.proc.stdout.readline().strip()
        if not line:
            self.proc.wait(10)
            raise AssertionError(f'child died: {self.proc.stderr.read()}')
        return line

    def send(self, command: str) -> None:
        self.proc.stdin.write(command + '\n')
        self.proc.stdin.flush()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.proc.stdin.close()
        self.proc.stdout.close()
        self.proc.stderr.close()


def _readable(bag: Path) -> int:
    with AnyReader([bag], default_typestore=messages.TYPESTORE) as reader:
        return sum(1 for _ in reader.messages())


def test_sigkill_at_random_moments_loses_no_finished_episode(tmp_path: Path) -> None:
    out = tmp_path / 'ds'
    rng = random.Random(8)
    finished = []
    kinds = ['first_50ms', 'during_start', 'after_stop', 'mid_episode'] * 6
    rng.shuffle(kinds)
    for kind in kinds:
        child = Child(out)
        child.send('start')
        if kind == 'during_start':  # the command may not even have been read yet
            time.sleep(rng.uniform(0.0, 0.01))
        else:
            assert child.read().startswith('started')
            if kind == 'first_50ms':
                time.sleep(rng.uniform(0.0, 0.05))
            elif kind == 'mid_episode':
                time.sleep(rng.uniform(0.05, 0.6))
            else:
                time.sleep(rng.uniform(0.0, 0.1))
                child.send('stop')
                finished.append(child.read().split()[1])
        child.kill()

    with DatasetRecorder(out, 'panda', JOINTS, TOPICS, {}, 'lift') as rec:
        report = rec.last_recovery
        entries = {e['name']: e for e in rec.episodes}
    assert len(entries) >= len(kinds) - kinds.count('during_start')
    for name in finished:
        assert entries[name]['status'] == 'complete' and entries[name]['success'] is True
        assert _readable(out / name) == entries[name]['message_counts']['/joint_states']
    for bag in sorted(out.glob('episode_*')):
        _readable(bag)  # raises on a directory rosbags cannot open
        assert bag.name in entries
    index = yaml.safe_load((out / 'dataset.yaml').read_text())
    for entry in index['episodes']:
        if not (out / entry['name']).exists():
            assert entry['status'] == 'interrupted' and entry['recovered'] is False
            assert entry['error'], entry
            if 'quarantine' in entry:
                assert (out / entry['quarantine']).is_dir()
    leftovers = [p.name for p in out.rglob('*') if p.name.endswith('.tmp')
                 or p.name == '.recovery']
    assert leftovers == [], leftovers
    assert report.changed


def test_zero_byte_bag_is_quarantined_and_temp_files_removed(tmp_path: Path) -> None:
    """What a kill in an episode's first instants leaves: quarantined, with the reason."""
    out = tmp_path / 'ds'
    with DatasetRecorder(out, 'panda', JOINTS, TOPICS, {}, 'lift') as rec:
        rec.start_episode()
        rec.stop_episode(True)
    index = yaml.safe_load((out / 'dataset.yaml').read_text())
    index['episodes'].append({'name': 'episode_000001', 'status': 'recording'})
    (out / 'dataset.yaml').write_text(yaml.safe_dump(index))
    (out / 'episode_000001').mkdir()
    (out / 'episode_000001' / 'episode_000001.mcap').write_bytes(b'')
    (out / 'episode_000002').mkdir()  # killed before the bag file existed, not listed
    (out / '.dataset.x1y2.yaml.tmp').write_bytes(b'')
    with DatasetRecorder(out, 'panda', JOINTS, TOPICS, {}, 'lift') as rec:
        report = rec.last_recovery
        entries = {e['name']: e for e in rec.episodes}
        assert rec.start_episode() == 'episode_000003'
        rec.discard_episode()
    assert report.quarantined == ['episode_000001', 'episode_000002']
    assert '.dataset.x1y2.yaml.tmp' in report.removed and 'quarantined' in str(report)
    first = entries['episode_000001']
    assert first['quarantine'] == 'quarantine/episode_000001'
    assert first['error'].startswith('bag file unreadable (0 bytes)')
    assert 'before the bag file was created' in entries['episode_000002']['error']
    assert (out / 'quarantine' / 'episode_000001' / 'episode_000001.mcap').exists()
    assert sorted(p.name for p in out.glob('episode_*')) == ['episode_000000']
    assert _readable(out / 'episode_000000') == 0
    assert not list(out.glob('*.tmp'))
