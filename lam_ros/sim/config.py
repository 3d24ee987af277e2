"""Configuration of the grasping tasks: one dataclass for the task, one for the camera."""

from dataclasses import dataclass, field, fields, replace
import math
from typing import Any, Dict, Tuple

TASKS: Tuple[str, ...] = ('lift', 'pick_place')
"""Task names accepted everywhere a task is chosen."""

DEFAULT_MAX_EPISODE_STEPS: Dict[str, int] = {'lift': 150, 'pick_place': 250}
"""Episode length in policy steps used when ``TaskConfig.max_episode_steps`` is 0."""


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
    """Draw the Panda with its collision meshes: frames render ~20x faster (also render())."""

    def __post_init__(self) -> None:
        """Validate sizes and clipping planes."""
        if int(self.width) < 1 or int(self.height) < 1:
            raise ValueError(f'camera width/height must be >= 1 pixel, got '
                             f'{self.width}x{self.height}')
        if not 0.0 < self.near_m < self.far_m:
            raise ValueError(f'camera needs 0 < near_m < far_m, got {self.near_m}, {self.far_m}')
        if not 0.0 < self.fov_deg < 180.0:
            raise ValueError(f'camera fov_deg must be in (0, 180), got {self.fov_deg}')


@dataclass
class TaskConfig:
    """Everything that defines one grasping task and its timing."""

    task: str = 'lift'
    """``lift`` or ``pick_place``."""
    control_rate_hz: float = 20.0
    """Policy rate: one ``step()`` per control period."""
    physics_rate_hz: float = 240.0
    """PyBullet time step rate; must be a whole multiple of ``control_rate_hz``."""
    max_episode_steps: int = 0
    """Policy steps before truncation; 0 picks the task default (150 lift, 250 pick_place)."""
    spawn_center_xy_m: Tuple[float, float] = (0.5, 0.0)
    """Centre of the cube spawn region on the table (m)."""
    spawn_size_xy_m: Tuple[float, float] = (0.2, 0.2)
    """Extent of the cube spawn region (m); the cube centre is drawn uniformly inside."""
    spawn_yaw_range_rad: Tuple[float, float] = (-math.pi / 4, math.pi / 4)
    """Range of the cube's random yaw (rad). The cube looks the same every 90 deg, so the
    default quarter turn already holds every distinct orientation; a wider range only adds
    poses whose observed yaw differs by 90 deg for the same scene, and makes the grasp a
    demonstrator picks jump between faces where a learner cannot tell them apart."""
    goal_center_xy_m: Tuple[float, float] = (0.5, 0.0)
    """Centre of the region the pick_place target zone is drawn from (m)."""
    goal_size_xy_m: Tuple[float, float] = (0.3, 0.5)
    """Extent of the target-zone region (m)."""
    goal_radius_m: float = 0.06
    """Radius of the target zone (m); the cube centre must end inside it."""
    goal_clearance_m: float = 0.03
    """Minimum gap between the target zone and the spawned cube's footprint (m)."""
    cube_size_m: float = 0.05
    """Edge length of the cube (m); matches ``urdf/cube.urdf``."""
    lift_height_m: float = 0.10
    """How far the cube's bottom must be above the table for a lift (m)."""
    lift_hold_s: float = 0.5
    """How long the cube must stay held and lifted for success (s)."""
    rest_speed_m_s: float = 0.02
    """Cube speed below which it counts as at rest (m/s)."""
    open_gripper_width_m: float = 0.06
    """Gripper width (both fingers, m) above which the gripper counts as open."""
    init_joint_noise_rad: float = 0.02
    """Std of the Gaussian perturbation of the home pose at reset (rad)."""
    joint_limit_tolerance_rad: float = 0.05
    """Arm targets up to this far outside the URDF limits are clipped; further is an error."""
    finger_limit_tolerance_m: float = 0.005
    """Finger targets up to this far outside 0..0.04 m are clipped; further is an error."""
    success_bonus: float = 5.0
    """Reward added on the step that reaches success."""
    render_width: int = 320
    """Width of ``render()`` frames in pixels."""
    render_height: int = 240
    """Height of ``render()`` frames in pixels."""
    camera: CameraConfig = field(default_factory=CameraConfig)
    """Observation camera; off by default."""

    def __post_init__(self) -> None:
        """Validate values and fill task-dependent defaults."""
        if isinstance(self.camera, dict):
            self.camera = CameraConfig(**self.camera)
        if self.task not in TASKS:
            raise ValueError(f'unknown task {self.task!r}; expected one of {TASKS}')
        if self.control_rate_hz <= 0 or self.physics_rate_hz <= 0:
            raise ValueError('control_rate_hz and physics_rate_hz must be positive, got '
                             f'{self.control_rate_hz}, {self.physics_rate_hz}')
        ratio = self.physics_rate_hz / self.control_rate_hz
        if ratio < 1 or abs(ratio - round(ratio)) > 1e-9:
            raise ValueError(
                f'physics_rate_hz ({self.physics_rate_hz}) must be a whole multiple of '
                f'control_rate_hz ({self.control_rate_hz})')
        if self.max_episode_steps == 0:
            self.max_episode_steps = DEFAULT_MAX_EPISODE_STEPS[self.task]
        if self.max_episode_steps < 1:
            raise ValueError(f'max_episode_steps must be >= 1 (or 0 for the task default), '
                             f'got {self.max_episode_steps}')
        if min(self.spawn_size_xy_m) < 0 or min(self.goal_size_xy_m) < 0:
            raise ValueError('spawn_size_xy_m and goal_size_xy_m must be non-negative')

    @property
    def physics_steps_per_control(self) -> int:
        """Physics steps per policy step."""
        return int(round(self.physics_rate_hz / self.control_rate_hz))

    def with_overrides(self, **overrides: Any) -> 'TaskConfig':
        """Return a copy with some fields replaced; unknown names raise ValueError."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f'unknown TaskConfig fields {unknown}; known: {sorted(known)}')
        if overrides.get('max_episode_steps') is None and 'task' in overrides:
            overrides['max_episode_steps'] = 0
        return replace(self, **overrides)
