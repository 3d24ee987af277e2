"""
The policy's camera encoder: a small CNN that turns one image into a few tokens.

Its pooling to a fixed grid is written as two small averaging matrices computed from the
configured image size, which is the same as adaptive average pooling but leaves no
shape-dependent operator in the graph, so exported models (ONNX, torch.export) keep a free
batch dimension.
"""

import math
from typing import Tuple

from lam_ros.policy.config import PolicyConfig
import torch
from torch import nn


def pool_matrix(size: int, grid: int) -> torch.Tensor:
    """Return the (grid, size) matrix that averages the bins of adaptive average pooling."""
    matrix = torch.zeros(grid, size)
    for i in range(grid):
        low, high = (i * size) // grid, -(-((i + 1) * size) // grid)
        matrix[i, low:high] = 1.0 / (high - low)
    return matrix


class ImageEncoder(nn.Module):
    """Small CNN: (N, C, H, W) normalised image -> (N, image_grid**2, d_model) tokens."""

    def __init__(self, in_channels: int, image_hw: Tuple[int, int],
                 config: PolicyConfig) -> None:
        """Create stride-2 conv layers, a pooling to a fixed grid and a projection."""
        super().__init__()
        layers, c = [], in_channels
        height, width = image_hw
        for out in config.image_channels:
            # GroupNorm, not BatchNorm: each image is normalised on its own, so padded history
            # steps and batch composition never leak into the features.
            layers += [nn.Conv2d(c, out, 3, stride=2, padding=1),
                       nn.GroupNorm(math.gcd(8, out), out), nn.GELU()]
            c = out
            height, width = (height - 1) // 2 + 1, (width - 1) // 2 + 1
        self.conv = nn.Sequential(*layers)
        # Not saved: they follow from the config, so checkpoints hold weights only.
        self.register_buffer('pool_h', pool_matrix(height, config.image_grid), persistent=False)
        self.register_buffer('pool_w', pool_matrix(width, config.image_grid).T.contiguous(),
                             persistent=False)
        self.proj = nn.Linear(c, config.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode a batch of images."""
        pooled = self.pool_h @ self.conv(x) @ self.pool_w  # (N, C, grid, grid)
        return self.proj(pooled.flatten(2).transpose(1, 2))
