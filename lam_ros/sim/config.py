"""Configuration of a grasping task run in the simulator (the cameras' is in description)."""

from dataclasses import dataclass, field, fields, replace
import math
from typing import Any, Dict, Tuple

from lam_ros.description import CameraConfig, get_task, load_robot, TASK_NAMES
from lam_ros.description.camera import camera_configs

__all__ = ['CameraConfig', 'TASK_NAMES', 'TaskConfig']


@dataclass
class TaskConfig:
    """Everything that defines one grasping task and its timing."""

    task: str = 'lift'
    """A task name of ``lam_ros.description.TASKS`` (``lift``, ``pick_place``)."""
    robot: str = ''
    """The simulated arm: a robot description name (``config/robots/<name>.yaml``) or YAML
    path; '' is the default robot."""
    control_rate_hz: float = 0.0
    """Policy rate: one ``step()`` per control period (0: the robot description's)."""
    physics_rate_hz: float = 240.0
    """PyBullet time step rate; must be a whole multiple of ``control_rate_hz``."""
    max_episode_steps: int = 0
    """Policy steps before truncation; 0 picks the task's ``default_max_episode_steps``."""
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
    """Finger-gripper width (both fingers, m) above which it counts as open; other grippers
    count as open above 75 % of their range (``GripperSpec.open_fraction``)."""
    init_joint_noise_rad: float = 0.02
    """Std of the Gaussian perturbation of the home pose at reset (rad)."""
    joint_limit_tolerance_rad: float = 0.05
    """Arm targets up to this far outside the URDF limits are clipped; further is an error."""
    finger_limit_tolerance_m: float = 0.005
    """Gripper targets up to this far outside its range are clipped; further is an error."""
    success_bonus: float = 5.0
    """Reward added on the step that reaches success."""
    render_width: int = 320
    """Width of ``render()`` frames in pixels."""
    render_height: int = 240
    """Height of ``render()`` frames in pixels."""
    cameras: Dict[str, CameraConfig] = field(default_factory=camera_configs)
    """Camera name -> its settings: the fixed ``scene`` camera and the ``wrist`` camera on the
    hand, both off by default; a dict of fields (``{'wrist': {'enabled': True}}``) or a list
    of names to enable updates the defaults (``lam_ros.description.camera.camera_configs``)."""
    camera_observations: bool = True
    """Put every enabled camera's images in the observation (``<name>_rgb``, ``<name>_depth``);
    False renders them only on request (``camera_image``), as the sim node and the demo
    recorder do at each camera's own rate."""

    def __post_init__(self) -> None:
        """Validate values and fill task-dependent defaults."""
        self.cameras = camera_configs(self.cameras)
        task = get_task(self.task)
        if self.control_rate_hz == 0:
            self.control_rate_hz = load_robot(self.robot or None).control_rate_hz
        if self.control_rate_hz <= 0 or self.physics_rate_hz <= 0:
            raise ValueError('control_rate_hz and physics_rate_hz must be positive, got '
                             f'{self.control_rate_hz}, {self.physics_rate_hz}')
        ratio = self.physics_rate_hz / self.control_rate_hz
        if ratio < 1 or abs(ratio - round(ratio)) > 1e-9:
            raise ValueError(
                f'physics_rate_hz ({self.physics_rate_hz}) must be a whole multiple of '
                f'control_rate_hz ({self.control_rate_hz})')
        if self.max_episode_steps == 0:
            self.max_episode_steps = task.default_max_episode_steps
        if self.max_episode_steps < 1:
            raise ValueError(f'max_episode_steps must be >= 1 (or 0 for the task default), '
                             f'got {self.max_episode_steps}')
        if min(self.spawn_size_xy_m) < 0 or min(self.goal_size_xy_m) < 0:
            raise ValueError('spawn_size_xy_m and goal_size_xy_m must be non-negative')

    @property
    def enabled_cameras(self) -> Dict[str, CameraConfig]:
        """Return name -> settings of the cameras that are on, sorted by name."""
        return {name: cam for name, cam in sorted(self.cameras.items()) if cam.enabled}

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
