"""
Cameras: the image-key convention, the camera defaults and the pinhole intrinsics, once.

Image observation keys are ``<camera>_rgb`` (uint8 (H, W, 3)) and ``<camera>_depth`` (float32
(H, W, 1), metres); a camera name is a lower-case identifier (``scene``, ``wrist``).
:func:`image_kind`, :func:`image_channels` and :func:`camera_name` decide it for every part
(simulator, datasets, policy, inference). The simulator renders with :class:`CameraConfig`;
the sim node and the demo recorder publish ``sensor_msgs/CameraInfo`` from
:func:`pinhole_intrinsics`, so images and intrinsics agree.
"""

from dataclasses import dataclass
import math
import re
from typing import Any, Dict, Optional, Tuple

import numpy as np

IMAGE_KINDS: Dict[str, int] = {'rgb': 3, 'depth': 1}
"""Image kind -> channels: '<camera>_rgb' is uint8 (H, W, 3), '<camera>_depth' float m."""
LEGACY_IMAGE_KEYS = ('rgb', 'depth')
"""The bare single-camera keys of earlier datasets and checkpoints (refused)."""
_CAMERA_PATTERN = re.compile(r'^[a-z][a-z0-9_]*$')


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


def image_kind(key: str) -> Optional[str]:
    """
    Return 'rgb' or 'depth' for a camera observation key, None for any other key.

    ``'scene_rgb'`` -> 'rgb', ``'wrist_depth'`` -> 'depth', ``'joint_pos'`` -> None. The
    bare keys 'rgb' and 'depth' of single-camera data are not image keys (see
    :func:`check_image_keys`).
    """
    camera, _, kind = str(key).rpartition('_')
    if kind in IMAGE_KINDS and camera and _CAMERA_PATTERN.match(camera):
        return kind
    return None


def image_channels(key: str) -> Optional[int]:
    """Return 3 for '<camera>_rgb', 1 for '<camera>_depth', None for a vector key."""
    kind = image_kind(key)
    return None if kind is None else IMAGE_KINDS[kind]


def camera_name(key: str) -> Optional[str]:
    """Return the camera of an image key ('wrist_rgb' -> 'wrist'), None for a vector key."""
    return str(key).rpartition('_')[0] if image_kind(key) is not None else None


def image_key(camera: str, kind: str) -> str:
    """Return the observation key of ``camera``'s ``kind`` ('rgb' or 'depth') images."""
    if not (isinstance(camera, str) and _CAMERA_PATTERN.match(camera)) \
            or kind not in IMAGE_KINDS:
        raise ValueError(f'a camera name must be a lower-case identifier such as "scene" and '
                         f'the kind one of {sorted(IMAGE_KINDS)}; got {camera!r}, {kind!r}')
    return f'{camera}_{kind}'


def check_image_keys(keys: Any, where: str) -> None:
    """Raise ValueError when ``keys`` hold the single-camera keys 'rgb' / 'depth'."""
    old = [k for k in keys if k in LEGACY_IMAGE_KEYS]
    if old:
        raise ValueError(
            f'{where} uses the old single-camera image keys {old}; image keys are now '
            "'<camera>_rgb' and '<camera>_depth' (the workspace camera is 'scene': 'scene_rgb', "
            "'scene_depth'). Rebuild the dataset / retrain the checkpoint with the new keys.")
