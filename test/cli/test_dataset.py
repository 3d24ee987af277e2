"""`lam-ros dataset` and `lam-ros train --dataset BAGS`: what a user sees on stdout and stderr."""

from pathlib import Path

from lam_ros.cli import main
from lam_ros.data import messages as m
from lam_ros.data.bags.writer import write_bag
import numpy as np
import pytest
import yaml

JOINTS = [f'panda_joint{i}' for i in range(1, 8)] + ['panda_finger_joint1']
STATE = JOINTS[::-1] + ['panda_finger_joint2']
JS, CMD, OBJ, OK = ('/joint_states', '/forward_position_controller/commands', '/object_pose',
                    '/task_success')
BASE_NS = 1_764_700_000 * 10**9


def write_episode(path: Path, duration_s: float, success, cmd_hz=25, frame='panda_link0'):
    """Write a `ros2 bag record` episode: 100 Hz states, commands at cmd_hz, poses, outcome."""
    records = []
    for k in range(int(round(duration_s * 100)) + 1):
        stamp = BASE_NS + k * 10_000_000
        pos = 0.1 * np.sin(k / 100 + np.arange(9))
        pos[-2:] = 0.02
        records.append((JS, m.JOINT_STATE, stamp, m.joint_state(stamp, STATE, pos)))
        if k % 5 == 0:
            records.append((OBJ, m.POSE_STAMPED, stamp, m.pose_stamped(
                stamp, frame, [0.5, 0.0, 0.02 + k / 1000, 1.0, 0.0, 0.0, 0.0])))
    for i in range(int(duration_s * cmd_hz)):
        records.append((CMD, m.FLOAT64_ARRAY, BASE_NS + int(round((i / cmd_hz + 0.002) * 1e9)),
                        m.float64_array(0.1 * np.sin(i / cmd_hz + np.arange(8)))))
    if success is not None:
        records.append((OK, m.BOOL, BASE_NS + int(duration_s * 1e9), m.bool_msg(success)))
    return write_bag(path, records)


@pytest.fixture
def bags(tmp_path):
    """Ten episodes: six short successes (< 1 s), two long successes, two failures."""
    root = tmp_path / 'bags'
    for i, (duration, success) in enumerate([(0.6, True), (0.8, True), (0.9, True),
                                             (0.7, True), (0.65, True), (0.95, True),
                                             (1.5, True), (1.6, None), (1.2, False),
                                             (0.7, False)]):
        write_episode(root / f'ep{i:02d}', duration, success)
    return root


def test_build_reports_every_exclusion_on_stderr_and_strict_fails(bags, tmp_path, capsys):
    cache = tmp_path / 'ds.safetensors'
    assert main(['dataset', 'build', str(bags), '--out', str(cache)]) == 0
    out, err = capsys.readouterr()
    assert 'episodes: 8 included, 2 excluded' in out
    assert 'rate: 25 Hz, measured: the commands on ' + CMD in out
    assert ('outcomes used: 7 successful, 1 without outcome; failed episodes excluded: 2 '
            '(--include-failures uses them)') in out
    assert err.splitlines()[0] == ('warning: excluded 2 of 10 episodes (20%); the dataset '
                                   'uses the other 8:')
    assert '2 failed outcome [--include-failures: to train on failed episodes too]: ep08, ' \
           'ep09' in err
    assert '--strict makes any exclusion an error' in err
    # The same exclusions from the cache, and --strict turns them into a failure.
    assert main(['dataset', 'build', str(bags), '--out', str(cache), '--strict']) == 1
    out, err = capsys.readouterr()
    assert 'cache up to date' in out and 'error: --strict: 2 episodes excluded' in err
    assert main(['dataset', 'build', str(bags), '--out', str(cache), '--include-failures',
                 '--strict']) == 0
    out, err = capsys.readouterr()
    assert 'episodes: 10 included, 0 excluded' in out and err == ''


def test_a_minimum_duration_says_how_much_it_drops(bags, tmp_path, capsys):
    cache = tmp_path / 'ds.safetensors'
    assert main(['dataset', 'build', str(bags), '--out', str(cache),
                 '--min-duration-s', '1.0']) == 0
    err = capsys.readouterr().err
    assert 'excluded 8 of 10 episodes (80%); the dataset uses the other 2:' in err
    assert '6 too short [--min-duration-s: 0 keeps every episode]: ep00, ep01, ep02, ep03, ' \
           'ep04, ep05' in err


def test_rates_and_frames_are_reported(bags, tmp_path, capsys):
    cache = tmp_path / 'ds.safetensors'
    assert main(['dataset', 'build', str(bags), '--out', str(cache), '--rate-hz', '20']) == 0
    err = capsys.readouterr().err
    assert err.startswith(f'warning: --rate-hz 20 differs from the recording: the commands on '
                          f'{CMD} arrive at 25 Hz')
    world = tmp_path / 'world'
    write_episode(world / 'ep', 0.8, True, frame='world')
    assert main(['dataset', 'build', str(world), '--out', str(tmp_path / 'w.safetensors')]) == 1
    err = capsys.readouterr().err
    assert "poses are in 'world', not the base frame 'panda_link0'" in err
    assert 'error: no usable episode' in err
    mapping = tmp_path / 'mapping.yaml'
    mapping.write_text(yaml.safe_dump({'frame_transforms': {'world': [0, 0, 0, 1, 0, 0, 0]}}))
    assert main(['dataset', 'build', str(world), '--out', str(tmp_path / 'w.safetensors'),
                 '--mapping', str(mapping), '--strict']) == 0


def test_train_on_a_bag_directory_uses_the_recorded_rate(bags, tmp_path, capsys):
    pytest.importorskip('torch')
    run = tmp_path / 'run'
    argv = ['train', '--dataset', str(bags), '--out', str(run), '--steps', '2',
            '--eval-interval', '2', '--d-model', '16', '--layers', '1', '--chunk', '4',
            '--batch-size', '4', '--no-progress', '--threads', '1']
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert 'at 25 Hz, measured: the commands on' in out
    assert 'excluded 2 of 10 episodes (20%)' in err
    from lam_ros.policy import read_checkpoint_config
    assert read_checkpoint_config(run / 'last')['policy_config']['control_rate_hz'] == 25.0
    run_documented_example(run / 'best', capsys)
    cache = bags / 'dataset_cache.safetensors'
    assert main(['train', '--dataset', str(cache), '--out', str(tmp_path / 'r2'),
                 '--rate-hz', '20']) == 2
    assert 'was built at 25 Hz, not --rate-hz 20' in capsys.readouterr().err
    assert main(argv[:3] + ['--out', str(tmp_path / 'r3'), '--strict']) == 1


def run_documented_example(checkpoint: Path, capsys) -> None:
    """Run the PolicyRunner example of docs/policy_runner.md and README on a checkpoint."""
    pytest.importorskip('pybullet')
    root = Path(__file__).resolve().parents[2]
    code = {}
    for doc in ('docs/policy_runner.md', 'README.md'):
        text = (root / doc).read_text()
        start = text.index('<!-- policy-runner-example -->')
        block = text[start:text.index('<!-- /policy-runner-example -->')]
        code[doc] = block.split('```python\n', 1)[1].split('```', 1)[0]
    assert code['README.md'] == code['docs/policy_runner.md']
    source = code['README.md'].replace("'runs/quickstart/bc_lift/best'", repr(str(checkpoint)))
    assert str(checkpoint) in source
    exec(compile(source, 'policy_runner_example', 'exec'), {})
    assert 'success: ' in capsys.readouterr().out


@pytest.mark.parametrize('command', [['train'], ['dataset', 'build'], ['dataset', 'info']])
def test_help_shows_defaults_and_units_and_wraps_at_spaces(command, capsys, monkeypatch):
    monkeypatch.setenv('COLUMNS', '80')
    with pytest.raises(SystemExit):
        main(command + ['--help'])
    text = capsys.readouterr().out
    assert max(len(line) for line in text.splitlines()) <= 80
    for flag in ('--rate-hz HZ', '--min-duration-s S', '--max-gap-s S', '--include-failures',
                 '--strict'):
        assert flag in text
    assert 'in seconds' in text and 'policy rate in Hz' in text
    assert '(default: 0.5)' in text
    if command == ['train']:
        assert 'joint_pos, joint_vel, gripper_width, object_pose,' in text
