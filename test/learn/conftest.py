"""Shared data for the learning tests: a few scripted-expert lift demos as real bags."""

import pytest
import torch

from lam_ros.data.dataset.build import build_dataset
from lam_ros.data.recording.demos import DemoConfig, record_demos

torch.set_num_threads(1)


@pytest.fixture(scope='session')
def lift_demos(tmp_path_factory):
    """Directory with 4 noisy expert lift episodes recorded as MCAP bags (lam-ros demos)."""
    out = tmp_path_factory.mktemp('lift_demos')
    record_demos(DemoConfig(task='lift', episodes=4, seed=0, noise_std_m=0.01), out)
    return out


@pytest.fixture(scope='session')
def lift_dataset(lift_demos):
    """The dataset built from lift_demos."""
    return build_dataset(lift_demos)
