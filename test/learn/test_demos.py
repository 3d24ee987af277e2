"""Demonstrations as training data: dataset/policy checks, episode splits, windows."""

from lam_ros.learn.demos import (
    batch_to_torch, check_compatible, episode_windows, split_episodes)
from lam_ros.policy import PolicyConfig
import pytest
import torch

from .test_bc import STATE, tiny_config


def test_other_mismatches_are_refused(lift_dataset):
    with pytest.raises(ValueError, match='commands joints'):
        check_compatible(lift_dataset, PolicyConfig(joint_names=('a', 'b'), obs_spec=STATE,
                                                    control_rate_hz=20.0))
    with pytest.raises(ValueError, match='sampled at 20.0 Hz'):
        check_compatible(lift_dataset, tiny_config(control_rate_hz=10.0))


def test_episodes_are_split_whole_and_reproducibly(lift_dataset):
    train, val = split_episodes(lift_dataset, 0.25, seed=3)
    assert len(val) == 1 and len(train) == 3
    assert [e.name for e in split_episodes(lift_dataset, 0.25, seed=3)[1]] == [val[0].name]
    assert split_episodes(lift_dataset, 0.0, seed=3)[1] == []


def test_the_last_command_is_held_past_the_episode_end_unless_disabled(lift_dataset):
    windows = episode_windows(lift_dataset.episodes[:1], tiny_config())
    last = len(windows) - 1  # the final step: only its first chunk step lies in the episode
    batch = windows.batch([last])
    held = batch_to_torch(batch, torch.device('cpu'), hold_last_action=True)
    masked = batch_to_torch(batch, torch.device('cpu'), hold_last_action=False)
    assert held[3].all() and masked[3].tolist() == [[True, False, False, False, False]]
    final = torch.from_numpy(lift_dataset.episodes[0].action[-1])
    assert torch.equal(held[2][0], final.expand(5, 8))
