"""trainer_node as a real process: progress over DDS, cancel, SIGINT, the latched result."""

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip('rclpy')
pytest.importorskip('diagnostic_msgs')

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402, I100
from lam_ros.data.recording.demos import DemoConfig, record_demos  # noqa: E402
from lam_ros.policy import load_checkpoint  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from .ros_harness import isolate_dds, NodeProcess, Probe, ROOT  # noqa: E402

TINY = {'d_model': 32, 'n_heads': 2, 'n_layers': 1, 'chunk_size': 5, 'dropout': 0.0,
        'num_threads': 1, 'device': 'cpu', 'status_rate_hz': 10.0, 'rl_env_steps': 0}


@pytest.fixture(scope='module')
def demos(tmp_path_factory):
    """Two scripted lift episodes recorded as bags."""
    out = tmp_path_factory.mktemp('trainer_demos')
    record_demos(DemoConfig(task='lift', episodes=2, seed=0), out)
    return out


class Diagnostics:
    """Collects the trainer's DiagnosticArray messages as dicts of key -> value."""

    def __init__(self, probe: Probe) -> None:
        self.reports = []
        probe.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_msg, 10)

    def _on_msg(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.startswith('trainer_node'):
                values = {kv.key: kv.value for kv in status.values}
                self.reports.append(dict(values, message=status.message,
                                         level=status.level))

    def seen(self, **want) -> bool:
        return any(all(r.get(k) == v for k, v in want.items()) for r in self.reports)


def _start(demos, out_dir, **params):
    isolate_dds()
    return NodeProcess('trainer_node', dict(TINY, dataset=str(demos), output_dir=str(out_dir),
                                            **params))


def test_reports_progress_and_cancels_with_its_last_checkpoint_loadable(demos, tmp_path):
    node = _start(demos, tmp_path / 'run', bc_steps=1_000_000, bc_eval_interval=1_000_000)
    probe = Probe()
    diag = Diagnostics(probe)
    try:
        assert probe.spin_until(lambda: any(r['stage'] == 'bc' and r['loss']
                                            for r in diag.reports), 90.0), node.output()
        bc = next(r for r in diag.reports if r['stage'] == 'bc' and r['loss'])
        assert int(bc['step']) > 0 and bc['total_steps'] == '1000000'
        assert float(bc['eta_s']) > 0 and float(bc['loss']) == float(bc['loss'])
        assert bc['output_dir'] == str(tmp_path / 'run') and bc['level'] == b'\x00'
        answer = probe.call(Trigger, '/trainer_node/cancel')
        assert answer.success and 'stopping at' in answer.message
        assert probe.spin_until(lambda: diag.seen(stage='cancelled'), 60.0), node.output()
        final = [r for r in diag.reports if r['stage'] == 'cancelled'][-1]
        assert final['level'] == b'\x01' and final['last_checkpoint'].endswith('last')
        again = probe.call(Trigger, '/trainer_node/cancel')
        assert not again.success and 'nothing to cancel' in again.message
    finally:
        probe.close()
        code = node.stop(timeout_s=30.0)
    assert code == 0, node.output()
    model, meta = load_checkpoint(final['last_checkpoint'])
    assert 0 < meta['step'] < 1_000_000 and model.config.head == 'gaussian'
    summary = json.loads((tmp_path / 'run' / 'pipeline.json').read_text())
    assert summary['status'] == 'cancelled' and summary['best_checkpoint'] == ''


def test_sigint_stops_cleanly_and_saves_the_last_checkpoint(demos, tmp_path):
    node = _start(demos, tmp_path / 'run', bc_steps=1_000_000, bc_eval_interval=1_000_000)
    probe = Probe()
    diag = Diagnostics(probe)
    try:
        assert probe.spin_until(lambda: any(r['stage'] == 'bc' and int(r['step']) > 0
                                            for r in diag.reports), 90.0), node.output()
    finally:
        probe.close()
        code = node.stop(timeout_s=30.0)
    output = node.output()
    assert code == 0, output
    assert 'Traceback' not in output and 'last checkpoint' in output, output
    # No evaluation interval was reached: the checkpoint is the one written on SIGINT.
    _, meta = load_checkpoint(tmp_path / 'run' / 'bc' / 'last')
    assert 0 < meta['step'] < 1_000_000


def test_finished_run_latches_the_exported_checkpoint(demos, tmp_path):
    node = _start(demos, tmp_path / 'run', bc_steps=20, bc_eval_interval=10, eval_episodes=1)
    probe = Probe()
    diag = Diagnostics(probe)
    try:
        assert probe.spin_until(lambda: diag.seen(stage='done'), 180.0), node.output()
        # Subscribed only now: transient local still delivers the path.
        paths = []
        qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
        probe.node.create_subscription(String, '/trainer_node/best_checkpoint',
                                       lambda m: paths.append(m.data), qos)
        assert probe.spin_until(lambda: paths, 10.0)
        done = [r for r in diag.reports if r['stage'] == 'done'][-1]
        assert 0.0 <= float(done['success_rate']) <= 1.0 and 'exported' in done['message']
    finally:
        probe.close()
        code = node.stop(timeout_s=30.0)
    assert code == 0, node.output()
    assert paths == [str(tmp_path / 'run' / 'policy')]
    model, meta = load_checkpoint(paths[0])
    assert meta['pipeline']['stage'] == 'bc' and meta['pipeline']['evaluation']['episodes'] == 1


@pytest.mark.parametrize('text, expected', [
    ('trainer_node:\n  ros__parameters:\n    bc_steps: [1, 2\n', 'cannot read params file'),
    ('trainer_node:\n  ros__parameters:\n    bc_step: 10\n', "unknown parameter(s) ['bc_step']"),
    ('trainer_node:\n  ros__parameters:\n    bc_steps: many\n', 'bc_steps must be an integer'),
    ('other_node:\n  ros__parameters:\n    bc_steps: 10\n', 'no "trainer_node:"'),
])
def test_a_bad_params_file_is_one_clear_line_and_nothing_is_written(demos, tmp_path, text,
                                                                    expected):
    out_dir = tmp_path / 'run'
    out_dir.mkdir()
    (out_dir / 'keep.txt').write_text('previous work')
    params = tmp_path / 'train.yaml'
    params.write_text(text)
    isolate_dds()
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    done = subprocess.run(
        [sys.executable, '-m', 'lam_ros.nodes.trainer_node', '--ros-args', '--params-file',
         str(params), '-p', f'dataset:={demos}', '-p', f'output_dir:={out_dir}'],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert done.returncode == 1 and len(lines) == 1, lines
    assert lines[0].startswith('trainer_node: ') and expected in lines[0], lines
    assert sorted(p.name for p in out_dir.iterdir()) == ['keep.txt']


def test_a_missing_dataset_is_refused_before_anything_is_written(tmp_path):
    node = _start(tmp_path / 'no_such_demos', tmp_path / 'run')
    try:
        node.proc.wait(60.0)
    finally:
        code = node.stop()
    assert code == 1 and 'no_such_demos' in node.output() and 'does not exist' in node.output()
    assert not (tmp_path / 'run').exists()


def test_a_failing_stage_ends_the_node_with_its_reason(tmp_path):
    empty = tmp_path / 'no_bags'
    empty.mkdir()
    node = _start(empty, tmp_path / 'run', task='lift')
    try:
        node.proc.wait(60.0)
    finally:
        code = node.stop()
    output = node.output()
    assert code == 1 and 'holds no rosbag2 bags' in output and 'Traceback' not in output
