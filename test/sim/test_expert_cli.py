"""Tests for ``lam-ros expert`` (the sub-command module on its own parser)."""

import argparse
import json

from lam_ros.cli import expert as expert_cli
import pytest


def _run(argv):
    parser = argparse.ArgumentParser(prog='lam-ros')
    expert_cli.register(parser.add_subparsers(dest='command'))
    args = parser.parse_args(argv)
    return args.func(args)


def test_expert_command_prints_and_writes_success(tmp_path, capsys):
    out = tmp_path / 'expert.json'
    code = _run(['expert', '--task', 'lift', '--episodes', '2', '--seed', '7',
                 '--noise', '0', '--json', str(out)])
    assert code == 0
    assert 'lift: success' in capsys.readouterr().out
    result = json.loads(out.read_text())
    assert set(result) == {'lift'} and result['lift']['episodes'] == 2
    # Without noise the scripted expert lifts every cube (bench_sim.py measures 100 seeds).
    assert result['lift']['success_rate'] == 1.0


def test_expert_command_rejects_bad_episode_count(capsys):
    with pytest.raises(SystemExit) as exit_info:
        _run(['expert', '--episodes', '0'])
    assert exit_info.value.code == 2
    assert '--episodes' in capsys.readouterr().err
