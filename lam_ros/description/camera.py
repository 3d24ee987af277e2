"""
The workspace camera: its defaults and its pinhole intrinsics, defined once.

The simulator renders with these values, the sim node and the demo recorder publish
``sensor_msgs/CameraInfo`` from :func:`pinhole_intrinsics`, so images and intrinsics agree.
"""

from dataclasses import dataclass
import math
from typing import Tuple

import numpy as np


@dataclass
class CameraConfig:
    """A fixed pinhole camera looking at the workspace (off by default)."""

    enabled: bool = False
    """Add ``rgb`` (and ``depth``) to the observation."""
    width: int = 84
    """Image width in pixels."""
    height: int = 84
    """Image height in pixels."""
    depth: bool = True
    """Also return a depth image in metres when enabled."""
    eye_m: Tuple[float, float, float] = (1.1, 0.0, 0.75)
    """Camera position in the robot base frame (m)."""
    target_m: Tuple[float, float, float] = (0.42, 0.0, 0.15)
    """Point the camera looks at (m)."""
    up: Tuple[float, float, float] = (0.0, 0.0, 1.0)
    """Up direction of the image."""
    fov_deg: float = 55.0
    """Vertical field of view (degrees)."""
    near_m: float = 0.05
    """Near clipping distance (m)."""
    far_m: float = 3.0
    """Far clipping distance (m)."""
    light_robot_visuals: bool = True
    """Draw the arm with its collision meshes: frames render ~20x faster (also render())."""

    def __post_init__(self) -> None:
        """Validate sizes and clipping planes."""
        if int(self.width) < 1 or int(self.height) < 1:
            raise ValueError(f'camera width/height must be >= 1 pixel, got '
                             f'{self.width}x{self.height}')
        if not 0.0 < self.near_m < self.far_m:
            raise ValueError(f'camera needs 0 < near_m < far_m, got {self.near_m}, {self.far_m}')
        if not 0.0 < self.fov_deg < 180.0:
            raise ValueError(f'camera fov_deg must be in (0, 180), got {self.fov_deg}')

    def intrinsics(self) -> np.ndarray:
        """Return this camera's 3x3 pinhole matrix K (see :func:`pinhole_intrinsics`)."""
        return pinhole_intrinsics(self.width, self.height, self.fov_deg)


def pinhole_intrinsics(width: int, height: int, fov_y_deg: float) -> np.ndarray:
    """
    Return the 3x3 pinhole matrix K of a square-pixel camera with vertical FOV ``fov_y_deg``.

    The principal point is the image centre in pixel-centre coordinates, ``(W - 1) / 2``.
    """
    if int(width) < 1 or int(height) < 1 or not 0.0 < fov_y_deg < 180.0:
        raise ValueError(f'need width, height >= 1 and 0 < fov_y_deg < 180, got '
                         f'{width}, {height}, {fov_y_deg}')
    f = 0.5 * height / math.tan(math.radians(fov_y_deg) / 2.0)
    return np.array([[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0],
                     [0.0, 0.0, 1.0]])
