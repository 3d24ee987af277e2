"""
Cameras: the image-key convention, the camera defaults and the pinhole intrinsics, once.

Image observation keys are ``<camera>_rgb`` (uint8 (H, W, 3)) and ``<camera>_depth`` (float32
(H, W, 1), metres); a camera name is a lower-case identifier (``scene``, ``wrist``).
:func:`image_kind`, :func:`image_channels` and :func:`camera_name` decide it for every part
(simulator, datasets, policy, inference). The simulator renders with :class:`CameraConfig`;
the sim node and the demo recorder publish ``sensor_msgs/CameraInfo`` from
:func:`pinhole_intrinsics`, so images and intrinsics agree.
"""

from dataclasses import dataclass, fields, replace
import math
import re
from typing import Any, Dict, Mapping, Optional, Tuple

import numpy as np

IMAGE_KINDS: Dict[str, int] = {'rgb': 3, 'depth': 1}
"""Image kind -> channels: '<camera>_rgb' is uint8 (H, W, 3), '<camera>_depth' float m."""
LEGACY_IMAGE_KEYS = ('rgb', 'depth')
"""The bare single-camera keys of earlier datasets and checkpoints (refused)."""
_CAMERA_PATTERN = re.compile(r'^[a-z][a-z0-9_]*$')


MOUNTS = ('base', 'tool')
"""Where a camera is fixed: ``base`` (the robot base frame: a scene camera) or ``tool`` (the
robot description's tool point, moving with the hand: a wrist camera)."""


@dataclass
class CameraConfig:
    """A pinhole camera, fixed in the workspace or on the hand (off by default)."""

    enabled: bool = False
    """Render this camera: ``<name>_rgb`` (and ``<name>_depth``) in the observation, its
    topics on the sim node."""
    width: int = 84
    """Image width in pixels."""
    height: int = 84
    """Image height in pixels."""
    depth: bool = True
    """Also return a depth image in metres when enabled."""
    rate_hz: float = 10.0
    """Frame rate of its topics (Hz of simulated time; observations render every step)."""
    mount: str = 'base'
    """Frame ``eye_m``, ``target_m`` and ``up`` are given in: 'base' or 'tool' (:data:`MOUNTS`)."""
    eye_m: Tuple[float, float, float] = (1.1, 0.0, 0.75)
    """Camera position in the mount frame (m)."""
    target_m: Tuple[float, float, float] = (0.42, 0.0, 0.15)
    """Point the camera looks at, in the mount frame (m)."""
    up: Tuple[float, float, float] = (0.0, 0.0, 1.0)
    """Up direction of the image, in the mount frame."""
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
        if not (isinstance(self.rate_hz, (int, float)) and math.isfinite(self.rate_hz)
                and self.rate_hz > 0):
            raise ValueError(f'camera rate_hz must be a positive number, got {self.rate_hz!r}')
        if self.mount not in MOUNTS:
            raise ValueError(f'camera mount must be one of {MOUNTS}, got {self.mount!r}')
        for name in ('eye_m', 'target_m', 'up'):
            value = tuple(float(v) for v in getattr(self, name))
            if len(value) != 3 or not all(math.isfinite(v) for v in value):
                raise ValueError(f'camera {name} must be 3 finite numbers, got '
                                 f'{getattr(self, name)!r}')
            setattr(self, name, value)
        if math.dist(self.eye_m, self.target_m) < 1e-6:
            raise ValueError('camera eye_m and target_m must differ')

    def intrinsics(self) -> np.ndarray:
        """Return this camera's 3x3 pinhole matrix K (see :func:`pinhole_intrinsics`)."""
        return pinhole_intrinsics(self.width, self.height, self.fov_deg)


SCENE_CAMERA = CameraConfig()
"""The fixed workspace camera ``scene``: in front of the table, looking at the spawn region."""

WRIST_CAMERA = CameraConfig(mount='tool', eye_m=(0.07, 0.0, -0.1), target_m=(0.0, 0.0, 0.12),
                            up=(1.0, 0.0, 0.0), fov_deg=70.0, near_m=0.01, far_m=2.0)
"""The eye-in-hand camera ``wrist``: on the hand, 10 cm behind and 7 cm beside the tool
point, looking past the fingers along the approach axis (the tool frame's z)."""

DEFAULT_CAMERAS: Dict[str, CameraConfig] = {'scene': SCENE_CAMERA, 'wrist': WRIST_CAMERA}
"""The simulator's cameras by name; both off until enabled."""


def check_camera_name(name: Any, where: str = 'camera') -> str:
    """Return ``name`` if it is a camera name (a lower-case identifier), else raise."""
    if not isinstance(name, str) or not _CAMERA_PATTERN.match(name):
        raise ValueError(f'{where}: camera name {name!r} must be a lower-case identifier such '
                         'as "scene" or "wrist"')
    return name


def camera_configs(spec: Any = None) -> Dict[str, CameraConfig]:
    """
    Return name -> CameraConfig: :data:`DEFAULT_CAMERAS` updated by ``spec``.

    ``spec`` maps a camera name to a CameraConfig or to a dict of its fields (merged onto that
    camera's defaults; a new name starts from :class:`CameraConfig`'s), or is a list of names
    (or a comma-separated string) to enable with their defaults. Unknown fields raise.
    """
    out = dict(DEFAULT_CAMERAS)
    if spec is None:
        return out
    if isinstance(spec, str):
        spec = [s.strip() for s in spec.split(',') if s.strip()]
    if isinstance(spec, (list, tuple)):
        spec = {name: {'enabled': True} for name in spec}
    if not isinstance(spec, Mapping):
        raise ValueError(f'cameras must map camera names to settings, got {spec!r}')
    known = {f.name for f in fields(CameraConfig)}
    for name, value in spec.items():
        check_camera_name(name, 'cameras')
        if isinstance(value, CameraConfig):
            out[name] = value
            continue
        if not isinstance(value, Mapping):
            raise ValueError(f'cameras[{name!r}] must be a mapping of CameraConfig fields, got '
                             f'{value!r}')
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f'cameras[{name!r}]: unknown fields {unknown}; known: '
                             f'{sorted(known)}')
        out[name] = replace(out.get(name, CameraConfig()), **value)
    return out


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
