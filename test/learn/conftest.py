"""Shared data for the learning tests: a few scripted-expert lift demos as real bags."""

import pytest
import torch

from lam_ros.data.dataset import build_dataset
from .demo_bags import record_expert_demos

torch.set_num_threads(1)


@pytest.fixture(scope='session')
def lift_demos(tmp_path_factory):
    """Directory with 4 noisy expert lift episodes recorded as MCAP bags."""
    return record_expert_demos(tmp_path_factory.mktemp('lift_demos'), 'lift', episodes=4,
                               seed=0, noise=0.01)


@pytest.fixture(scope='session')
def lift_dataset(lift_demos):
    """The dataset built from lift_demos."""
    return build_dataset(lift_demos)
