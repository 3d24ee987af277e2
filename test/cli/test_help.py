"""What a new user meets first: ``--help`` of lam-ros and of every node, and defaults."""

import importlib.util
import os
from pathlib import Path
import re
import subprocess
import sys

from lam_ros.cli import build_parser, main
import pytest

ROOT = Path(__file__).resolve().parents[2]
NODES = sorted(p.stem for p in (ROOT / 'lam_ros' / 'nodes').glob('*_node.py'))
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]))


def _subparsers(parser):
    action = next(a for a in parser._actions if a.__class__.__name__ == '_SubParsersAction')
    return action.choices


def _all_parsers():
    """Yield (name, parser) of every command and sub-command, fully built."""
    for name in _subparsers(build_parser()):
        parser = _subparsers(build_parser(name))[name]
        yield name, parser
        if name == 'dataset':
            for action, sub in _subparsers(parser).items():
                yield f'{name} {action}', sub


def test_lam_ros_help_imports_neither_torch_nor_pybullet_nor_rclpy():
    code = ('import sys\nfrom lam_ros.cli import main\ntry:\n    main(["--help"])\n'
            'except SystemExit:\n    pass\n'
            'print("HEAVY", sorted({m.split(".")[0] for m in sys.modules} & '
            '{"torch", "pybullet", "rclpy", "matplotlib", "rosbags"}))')
    out = subprocess.run([sys.executable, '-c', code], env=ENV, capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert 'HEAVY []' in out, out
    for command in ('dataset', 'demos', 'eval', 'expert', 'quickstart', 'train'):
        assert re.search(rf'^    {command}\b', out, re.M), out


def test_every_help_text_shows_defaults_and_no_doubled_percent(capsys):
    for name, parser in _all_parsers():
        text = parser.format_help()
        assert '%%' not in text, name
        assert parser.description, f'lam-ros {name} has no description'
        for action in parser._actions:
            if action.help in (None, argparse_suppress()) or not action.option_strings or \
                    action.required or action.dest == 'help':
                continue
            assert 'default' in action.help, f'lam-ros {name} {action.option_strings[0]}'


def argparse_suppress():
    """Return argparse's SUPPRESS marker."""
    import argparse
    return argparse.SUPPRESS


def test_shared_options_have_the_same_default_everywhere():
    defaults = {}
    for name, parser in _all_parsers():
        for action in parser._actions:
            for flag in action.option_strings:
                if flag in ('--device', '--noise'):
                    defaults.setdefault(flag, {})[name] = action.default
    assert {'eval', 'train'} <= set(defaults['--device'])
    assert len(set(defaults['--device'].values())) == 1, defaults
    assert {'demos', 'expert'} <= set(defaults['--noise'])
    assert len(set(defaults['--noise'].values())) == 1, defaults


@pytest.mark.parametrize('node', NODES)
def test_every_node_answers_help_with_its_parameters_and_exits(node):
    proc = subprocess.run([sys.executable, '-m', f'lam_ros.nodes.{node}', '--help'], env=ENV,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith(f'usage: ros2 run lam_ros {node} ')
    entries = re.findall(r'^  (\S+) \(([a-z\[\]]+)(?:, ([^,]+))?, default: (.*)\)$', out, re.M)
    assert len(entries) >= 3, out
    assert not proc.stderr.strip(), proc.stderr  # nothing started, nothing logged


def test_sim_node_help_gives_types_units_and_defaults():
    out = subprocess.run([sys.executable, '-m', 'lam_ros.nodes.sim_node', '--help'], env=ENV,
                         capture_output=True, text=True, timeout=60, check=True).stdout
    assert '  joint_state_rate_hz (double, Hz, default: ' in out
    assert '  task (string, default: lift)\n      Task to simulate: lift or pick_place.' in out
    assert '  max_catch_up_s (double, s, default: 0.25)' in out
    assert 'simulating' not in out


def test_bad_task_names_the_tasks(capsys):
    with pytest.raises(SystemExit) as stop:
        main(['demos', '--task', 'push', '--output', 'x'])
    assert stop.value.code == 2
    assert 'push is not a task; tasks: lift, pick_place' in capsys.readouterr().err


def _checkpoint(run_dir):
    torch = pytest.importorskip('torch')
    from lam_ros.policy import PolicyConfig, save_checkpoint, TransformerPolicy
    from lam_ros.sim import JOINT_NAMES
    torch.manual_seed(0)
    model = TransformerPolicy(PolicyConfig(
        joint_names=JOINT_NAMES, obs_spec={'joint_pos': (8,)}, control_rate_hz=20.0,
        d_model=16, n_heads=2, n_layers=1, history_len=2, chunk_size=4))
    return save_checkpoint(run_dir / 'best', model, {'task': 'lift'})


def test_eval_checks_the_checkpoint_and_the_video_before_any_rollout(tmp_path, capsys):
    _checkpoint(tmp_path / 'run')
    assert main(['eval', '--checkpoint', str(tmp_path / 'run'), '--episodes', '1']) == 2
    err = capsys.readouterr().err
    assert err == (f'error: --checkpoint {tmp_path / "run"} is a run directory, not a '
                   f'checkpoint; did you mean {tmp_path / "run" / "best"}?\n')
    best = str(tmp_path / 'run' / 'best')
    assert main(['eval', '--checkpoint', best, '--task', 'pick_place', '--episodes', '1']) == 2
    assert "trained on task 'lift', not 'pick_place'" in capsys.readouterr().err
    if importlib.util.find_spec('imageio') is None:
        assert main(['eval', '--checkpoint', best, '--episodes', '1', '--gif',
                     str(tmp_path / 'x.mp4')]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f'error: --gif {tmp_path / "x.mp4"}: writing .mp4 needs imageio')
        assert err.count('\n') == 1 and 'eval lift' not in err  # no progress bar, no rollout
    (tmp_path / 'file').write_text('')
    assert main(['eval', '--checkpoint', best, '--episodes', '1', '--json',
                 str(tmp_path / 'file' / 'z.json')]) == 2
    assert 'is a file, not a folder' in capsys.readouterr().err
