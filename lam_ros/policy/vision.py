"""
The policy's camera encoders: one image in, a few tokens out.

Two encoders, chosen by ``PolicyConfig.image_encoder``:

- ``cnn``: stride-2 conv layers with GroupNorm, average-pooled to an ``image_grid`` x
  ``image_grid`` grid of tokens (one token per cell).
- ``resnet``: a ResNet-style trunk (a stride-2 stem, then residual blocks with GroupNorm,
  each later stage halving the resolution), then a spatial softmax that turns each of
  ``image_keypoints`` feature maps into the expected (x, y) position of its activation, as
  in robomimic's visual policies; the keypoints are projected to ``image_grid**2`` tokens.
  Keypoints carry positions (where is the cube, where is the gripper) at sub-pixel precision,
  which is what a grasp needs and what average pooling blurs away.

GroupNorm, not BatchNorm, in both: each image is normalised on its own, so padded history
steps and batch composition never leak into the features, and eval equals training.
Every shape-dependent constant (pooling matrices, keypoint coordinates) is a buffer computed
from the configured image size, so exported models (ONNX, torch.export) keep a free batch
dimension and checkpoints hold weights only.
"""

import math
from typing import Tuple

from lam_ros.policy.config import PolicyConfig
import torch
from torch import nn
from torch.nn import functional as F


def pool_matrix(size: int, grid: int) -> torch.Tensor:
    """Return the (grid, size) matrix that averages the bins of adaptive average pooling."""
    matrix = torch.zeros(grid, size)
    for i in range(grid):
        low, high = (i * size) // grid, -(-((i + 1) * size) // grid)
        matrix[i, low:high] = 1.0 / (high - low)
    return matrix


def _halved(size: int) -> int:
    """Output size of a 3x3, stride-2, padding-1 convolution."""
    return (size - 1) // 2 + 1


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(8, channels), channels)


class ImageEncoder(nn.Module):
    """Small CNN: (N, C, H, W) normalised image -> (N, image_grid**2, d_model) tokens."""

    def __init__(self, in_channels: int, image_hw: Tuple[int, int],
                 config: PolicyConfig) -> None:
        """Create stride-2 conv layers, a pooling to a fixed grid and a projection."""
        super().__init__()
        layers, c = [], in_channels
        height, width = image_hw
        for out in config.image_channels:
            layers += [nn.Conv2d(c, out, 3, stride=2, padding=1), _norm(out), nn.GELU()]
            c = out
            height, width = _halved(height), _halved(width)
        self.conv = nn.Sequential(*layers)
        self.num_tokens = config.image_grid ** 2
        # Not saved: they follow from the config, so checkpoints hold weights only.
        self.register_buffer('pool_h', pool_matrix(height, config.image_grid), persistent=False)
        self.register_buffer('pool_w', pool_matrix(width, config.image_grid).T.contiguous(),
                             persistent=False)
        self.proj = nn.Linear(c, config.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode a batch of images."""
        pooled = self.pool_h @ self.conv(x) @ self.pool_w  # (N, C, grid, grid)
        return self.proj(pooled.flatten(2).transpose(1, 2))


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with GroupNorm and a skip (a 1x1 projection when shapes change)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        """Create the block; stride 2 halves the resolution."""
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1,
                               bias=False)
        self.norm1 = _norm(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.norm2 = _norm(out_channels)
        self.skip = nn.Identity() if stride == 1 and in_channels == out_channels else \
            nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                          _norm(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block."""
        y = F.gelu(self.norm1(self.conv1(x)))
        return F.gelu(self.norm2(self.conv2(y)) + self.skip(x))


class SpatialSoftmax(nn.Module):
    """(N, C, H, W) features -> (N, K, 2) expected (x, y) in [-1, 1] of K keypoint maps."""

    def __init__(self, channels: int, height: int, width: int, keypoints: int) -> None:
        """Create the 1x1 conv to keypoint maps, a learned temperature, coordinate buffers."""
        super().__init__()
        self.maps = nn.Conv2d(channels, keypoints, 1)
        self.log_temperature = nn.Parameter(torch.zeros(()))
        ys, xs = torch.meshgrid(torch.linspace(-1.0, 1.0, height),
                                torch.linspace(-1.0, 1.0, width), indexing='ij')
        self.register_buffer('coords', torch.stack([xs.flatten(), ys.flatten()], dim=1),
                             persistent=False)  # (H*W, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the keypoints of a batch of feature maps."""
        logits = self.maps(x).flatten(2) / self.log_temperature.exp()  # (N, K, H*W)
        return torch.softmax(logits, dim=-1) @ self.coords


class ResNetKeypointEncoder(nn.Module):
    """ResNet-GN trunk + spatial softmax: (N, C, H, W) -> (N, image_grid**2, d_model)."""

    def __init__(self, in_channels: int, image_hw: Tuple[int, int],
                 config: PolicyConfig) -> None:
        """
        Build the trunk from config.image_channels.

        The first entry is the stride-2 stem's width and the width of a residual block at
        that resolution; every later entry is one stride-2 residual block.
        """
        super().__init__()
        first = config.image_channels[0]
        height, width = _halved(image_hw[0]), _halved(image_hw[1])
        layers = [nn.Conv2d(in_channels, first, 3, stride=2, padding=1, bias=False),
                  _norm(first), nn.GELU()]
        c = first
        for out in config.image_channels[1:]:
            layers.append(ResidualBlock(c, out, 2))
            c = out
            height, width = _halved(height), _halved(width)
        self.trunk = nn.Sequential(*layers)
        self.keypoints = SpatialSoftmax(c, height, width, config.image_keypoints)
        self.num_tokens = config.image_grid ** 2
        self.d_model = config.d_model
        self.proj = nn.Linear(2 * config.image_keypoints, self.num_tokens * config.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode a batch of images."""
        points = self.keypoints(self.trunk(x)).flatten(1)  # (N, 2K)
        return self.proj(points).view(-1, self.num_tokens, self.d_model)


def make_image_encoder(in_channels: int, image_hw: Tuple[int, int],
                       config: PolicyConfig) -> nn.Module:
    """Return the encoder config.image_encoder names; it has a ``num_tokens`` attribute."""
    if config.image_encoder == 'resnet':
        return ResNetKeypointEncoder(in_channels, image_hw, config)
    return ImageEncoder(in_channels, image_hw, config)
