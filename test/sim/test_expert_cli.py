"""Tests for ``lam-ros expert``."""

import json

from lam_ros.cli import main


def test_expert_command_prints_and_writes_success(tmp_path, capsys):
    out = tmp_path / 'expert.json'
    code = main(['expert', '--task', 'lift', '--episodes', '2', '--seed', '7',
                 '--json', str(out)])
    assert code == 0
    assert 'lift: success' in capsys.readouterr().out
    result = json.loads(out.read_text())
    assert set(result) == {'lift'} and result['lift']['episodes'] == 2
    assert 0.0 <= result['lift']['success_rate'] <= 1.0


def test_expert_command_rejects_bad_episode_count(capsys):
    assert main(['expert', '--episodes', '0']) == 2
    assert '--episodes' in capsys.readouterr().err
