"""The camera encoder: its matrix pooling equals adaptive average pooling."""

from lam_ros.policy.vision import ImageEncoder, pool_matrix
import pytest
import torch
from torch.nn import functional as F

from .helpers import IMAGE, small_config


@pytest.mark.parametrize('height, width, grid', [(6, 8, 2), (5, 7, 3), (1, 1, 2), (11, 3, 4)])
def test_pool_matrices_equal_adaptive_average_pooling(height, width, grid):
    x = torch.randn(3, 4, height, width, generator=torch.Generator().manual_seed(0))
    pooled = pool_matrix(height, grid) @ x @ pool_matrix(width, grid).T
    assert torch.allclose(pooled, F.adaptive_avg_pool2d(x, grid), atol=1e-6)


def test_encoder_tokens_and_state_dict():
    config = small_config(IMAGE, image_grid=3)
    encoder = ImageEncoder(3, (24, 32), config)
    tokens = encoder(torch.randn(5, 3, 24, 32))
    assert tokens.shape == (5, 9, config.d_model)
    # The pooling matrices follow from the config: checkpoints hold weights only.
    assert not any(k.startswith('pool') for k in encoder.state_dict())
