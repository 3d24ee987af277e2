"""The README's main job, ``lam-ros quickstart``, runs end to end (tiny sizes)."""

import json

from lam_ros.cli import main
import pytest
import torch


def test_quickstart_runs_every_step(tmp_path, capsys):
    """Expert, demos, dataset, training and evaluation all run and leave their files."""
    torch.set_num_threads(1)
    out = tmp_path / 'qs'
    code = main(['quickstart', '--out', str(out), '--expert-episodes', '1', '--demos', '3',
                 '--steps', '5', '--eval-episodes', '1'])
    assert code == 0
    printed = capsys.readouterr().out
    for step in range(1, 6):
        assert f'== {step}/5' in printed
    expert = json.loads((out / 'expert.json').read_text())
    assert set(expert) == {'lift', 'pick_place'}
    assert (out / 'demos_lift' / 'dataset.yaml').is_file()
    assert (out / 'bc_lift' / 'best' / 'model.safetensors').is_file()
    evaluation = json.loads((out / 'eval_lift.json').read_text())
    assert evaluation['episodes'] == 1


def test_quickstart_rejects_nonsense_sizes(tmp_path):
    """A non-positive size stops before any work with a clear message."""
    with pytest.raises(SystemExit, match='--demos must be >= 1'):
        main(['quickstart', '--out', str(tmp_path), '--demos', '0'])
