"""Tests for the run files: resume state written with the umask's permissions, read back."""

import os

from lam_ros.learn.run_files import load_training_state, save_training_state
import torch


def test_training_state_round_trip_with_umask_permissions(tmp_path):
    """The resume state is a shareable file (0644 under umask 022) that loads back."""
    param = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.AdamW([param], lr=0.1)
    param.sum().backward()
    optimizer.step()
    old = os.umask(0o022)
    try:
        path = save_training_state(str(tmp_path), optimizer, {'step': 7})
    finally:
        os.umask(old)
    assert os.stat(path).st_mode & 0o777 == 0o644
    state, info = load_training_state(str(tmp_path))
    assert info == {'step': 7}
    assert torch.equal(state['state'][0]['exp_avg'], optimizer.state_dict()['state'][0]['exp_avg'])
