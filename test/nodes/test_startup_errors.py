"""Start-up errors of every node: one clear line on stderr and exit status 1, no traceback."""

import importlib
import os
from pathlib import Path
import resource
import signal
import subprocess
import sys

import pytest

pytest.importorskip('rclpy')

from lam_ros.nodes.common import run_node  # noqa: E402, I100

from .ros_harness import isolate_dds, NodeProcess, ROOT  # noqa: E402

NODES = {'recorder_node': 'RecorderNode', 'sim_node': 'SimNode',
         'teleop_node': 'TeleopNode', 'demo_runner_node': 'DemoRunnerNode',
         'replay_node': 'ReplayNode'}

# (node, parameter assignment, words the one line must contain)
BAD = [
    ('recorder_node', 'output_dir:=123', ["'output_dir'", 'a string', '123']),
    ('recorder_node', 'queue_depth:=1.5', ["'queue_depth'", 'an integer', '1.5']),
    ('recorder_node', 'joint_names:=5', ["'joint_names'", 'list of strings']),
    ('recorder_node', 'flush_interval_s:=abc', ["'flush_interval_s'", 'a number']),
    ('recorder_node', "output_dir:=''", ['output_dir is empty']),
    ('recorder_node', 'topics:=[/bad-topic,/goal_pose,/object_pose,/task_success]',
     ["'topics'", 'invalid topic name', '/bad-topic']),
    ('recorder_node', 'command_topic:=/cmd//x', ["'command_topic'", 'invalid topic name']),
    ('sim_node', 'seed:=abc', ["'seed'", 'an integer', "'abc'"]),
    ('sim_node', 'physics_rate_hz:=fast', ["'physics_rate_hz'", 'a number']),
    ('sim_node', 'camera_depth:=3', ["'camera_depth'", 'true or false']),
    ('sim_node', 'cameras:=scene,top', ["cameras 'scene,top'", "['scene', 'wrist']"]),
    ('teleop_node', 'joint_names:=5', ["'joint_names'", 'list of strings']),
    ('teleop_node', 'rate_hz:=abc', ["'rate_hz'", 'a number']),
    ('teleop_node', 'expert_seed:=abc', ["'expert_seed'", 'an integer']),
    ('teleop_node', 'command_topic:=bad-topic', ["'command_topic'", 'invalid topic name']),
    ('demo_runner_node', 'episodes:=1.5', ["'episodes'", 'an integer']),
    ('demo_runner_node', 'success_topic:=3', ["'success_topic'", 'a string']),
    ('replay_node', 'speed:=abc', ["'speed'", 'a number']),
    ('replay_node', 'source:=5', ["'source'", 'a string']),
    ('replay_node', 'command_topic:=bad-topic', ["'command_topic'", 'invalid topic name']),
    ('replay_node', 'episode:=episode_000000', ['set the source and episode parameters']),
]


def _run_in_process(node: str, params: list, capfd) -> tuple:
    module = importlib.import_module(f'lam_ros.nodes.{node}')
    args = ['prog', '--ros-args']
    for param in params:
        args += ['-p', param]
    code = run_node(getattr(module, NODES[node]), args)
    return code, capfd.readouterr()


def _assert_one_line(node: str, text: str, words: list, ignore: str = '') -> None:
    lines = [line for line in text.splitlines()
             if line.strip() and not (ignore and ignore in line)]
    assert len(lines) == 1, text
    assert lines[0].startswith(f'{node}: ') and 'Traceback' not in text, text
    for word in words:
        assert word in lines[0], (word, lines[0])


@pytest.mark.parametrize('node,param,words', BAD, ids=[f'{n}-{p}' for n, p, _ in BAD])
def test_bad_parameter_is_one_line_and_status_1(node, param, words, tmp_path, capfd,
                                                monkeypatch) -> None:
    isolate_dds()
    monkeypatch.chdir(tmp_path)  # a recorder that wrongly accepted '' would write here
    params = [param] if 'output_dir' in param or node != 'recorder_node' else \
        [param, f'output_dir:={tmp_path / "ds"}']
    code, captured = _run_in_process(node, params, capfd)
    assert code == 1, captured
    _assert_one_line(node, captured.err, words)
    assert not list(tmp_path.glob('*.yaml')) and not (tmp_path / 'ds').exists()


def test_corrupt_dataset_yaml_is_one_line(tmp_path, capfd) -> None:
    isolate_dds()
    out = tmp_path / 'ds'
    out.mkdir()
    (out / 'dataset.yaml').write_text('episodes: [\n  {name: episode_000000, status: comp')
    code, captured = _run_in_process('recorder_node', [f'output_dir:={out}'], capfd)
    assert code == 1
    _assert_one_line('recorder_node', captured.err, ['dataset.yaml is corrupt', 'line'])
    assert (out / 'dataset.yaml').read_text().endswith('comp')  # left as it was


def _no_file_space() -> None:
    # A process that may write no byte to any file: what a full disk looks like to it.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))


def test_full_disk_at_start_and_bad_type_as_processes(tmp_path) -> None:
    """The executables themselves: one line, exit status 1 (full disk, wrong type)."""
    isolate_dds()
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    out = tmp_path / 'ds'
    full = subprocess.run(
        [sys.executable, '-m', 'lam_ros.nodes.recorder_node', '--ros-args', '-p',
         f'output_dir:={out}'], env=env, cwd=tmp_path, capture_output=True, text=True,
        timeout=60, preexec_fn=_no_file_space)
    assert full.returncode == 1, full.stderr
    # The middleware reports its own shared-memory segment failing (RTPS_...); ours is one line.
    _assert_one_line('recorder_node', full.stderr, [str(out), 'free disk space'],
                     ignore='RTPS_')
    assert not [p for p in out.iterdir() if p.name.endswith('.tmp')]
    proc = NodeProcess('sim_node', {'seed': 'abc'})
    code = proc.proc.wait(timeout=60)
    text = proc.output()
    proc.stop()
    assert code == 1
    _assert_one_line('sim_node', text, ["'seed'", "'abc'"])
    assert Path(proc.log.name).exists()
