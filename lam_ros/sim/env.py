"""
``GraspEnv``: the lift and pick_place tasks as a gymnasium environment.

Episodes terminate on success (after the lift hold time, or once the cube rests in the
zone with the gripper open) and are truncated after ``max_episode_steps`` policy steps.
"""

from dataclasses import asdict
import math
from typing import Any, Dict, Optional, Tuple

import gymnasium as gym
from gymnasium import spaces
from lam_ros.description import get_task, image_key, LIFT_AND_HOLD, load_robot
from lam_ros.sim.config import CameraConfig, TaskConfig
from lam_ros.sim.scene import ArmScene
import numpy as np

_RENDER_CAMERA = CameraConfig(eye_m=(1.4, 0.9, 1.0), target_m=(0.3, 0.0, 0.25), fov_deg=50.0)


class GraspEnv(gym.Env):
    """
    Grasping tasks (``lift``, ``pick_place``) in PyBullet for the arm of ``config.robot``.

    Action: Box(A,) absolute joint-position targets in the description's ``joint_names``
    order (arm joints in rad, then the gripper entry its ``GripperSpec`` defines; the Panda:
    7 joints and the finger in m, 0 closed .. 0.04 open), held by position control for one
    control period; the gripper's mimic joints follow. Targets within
    ``joint_limit_tolerance_rad`` / ``finger_limit_tolerance_m`` outside the limits are
    clipped to them; wrong shapes, NaN/Inf or larger excursions raise ValueError.
    Observation keys follow docs/architecture.md.
    """

    metadata = {'render_modes': ['rgb_array', 'human'], 'render_fps': 20}

    def __init__(self, task: str = 'lift', render_mode: Optional[str] = None,
                 config: Optional[TaskConfig] = None, **overrides: Any) -> None:
        """Build the scene; ``overrides`` replace fields of ``config`` (or the defaults)."""
        base = config if config is not None else TaskConfig(task=task)
        if config is not None and task != config.task and 'task' not in overrides:
            overrides['task'] = task
        self.config = base.with_overrides(**overrides) if overrides else base
        if render_mode is not None and render_mode not in self.metadata['render_modes']:
            raise ValueError(f'render_mode must be None or one of '
                             f'{self.metadata["render_modes"]}, got {render_mode!r}')
        self.render_mode = render_mode
        self.metadata = dict(self.metadata, render_fps=int(round(self.config.control_rate_hz)))
        cfg = self.config
        self.task = cfg.task
        self.task_spec = get_task(cfg.task)
        # The success rule decides the hold timer, the success test and the reward shape.
        self._lift_rule = self.task_spec.success_rule == LIFT_AND_HOLD
        cameras = cfg.enabled_cameras
        renders = bool(cameras) or render_mode == 'rgb_array'
        light = all(cam.light_robot_visuals for cam in cameras.values())
        self.robot = load_robot(cfg.robot or None)
        self.joint_names = self.robot.joint_names
        self.state_joint_names = self.robot.state_joint_names
        self._grip_at = self.robot.gripper_index
        self._width_at = [self.state_joint_names.index(n)
                          for n in self.robot.gripper.width_joints]
        self._scene = ArmScene(cfg.physics_rate_hz, self.task_spec.has_goal,
                               gui=render_mode == 'human',
                               light_visuals=renders and light,
                               robot=self.robot)
        limits = self.joint_limits = self.robot.joint_limits()
        self._lower = limits.lower
        self._upper = limits.upper
        self._tolerance = np.full(self.robot.action_dim, cfg.joint_limit_tolerance_rad)
        if self._grip_at >= 0:
            self._tolerance[self._grip_at] = cfg.finger_limit_tolerance_m
        self._lower_tol = self._lower - self._tolerance
        self._upper_tol = self._upper + self._tolerance
        self._physics_per_control = cfg.physics_steps_per_control
        self.action_space = spaces.Box(self._lower.astype(np.float32),
                                       self._upper.astype(np.float32), dtype=np.float32)
        self.observation_space = self._make_observation_space()
        self._goal = np.array([0.5, 0.3, 0.0, 1.0, 0.0, 0.0, 0.0])
        self._goal_xy = (0.5, 0.3)
        self._home = np.asarray(self.robot.home_pose, dtype=np.float64)
        self._targets = self._home.copy()
        self._physics_steps = 0
        self._steps = 0
        self._held_s = 0.0
        self._cube_rest_z = cfg.cube_size_m / 2.0
        # State queries of the current physics step, shared by observation, reward and
        # success checks; cleared whenever the physics state changes.
        self._cache: Dict[str, Any] = {}

    def _cached(self, key: str, query: Any) -> Any:
        if key not in self._cache:
            self._cache[key] = query()
        return self._cache[key]

    def _joints(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self._cached('joints', self._scene.joint_states)

    def _ee_pose(self) -> np.ndarray:
        return self._cached('ee', self._scene.grasp_pose)

    def _cube_pose(self) -> np.ndarray:
        return self._cached('cube', lambda: self._scene.body_pose(self._scene.cube))

    def _contacts(self) -> Tuple[bool, bool]:
        return self._cached('contacts', self._scene.finger_contacts)

    def _make_observation_space(self) -> spaces.Dict:
        inf = np.inf
        box = lambda n: spaces.Box(-inf, inf, (n,), np.float32)  # noqa: E731
        n = self.robot.action_dim
        obs = {'joint_pos': box(n), 'joint_vel': box(n),
               'gripper_width': spaces.Box(-inf, inf, (1,), np.float32),
               'ee_pose': box(7), 'object_pose': box(7)}
        if self.task_spec.has_goal:
            obs['goal_pose'] = box(7)
        for name, cam in self._observed_cameras().items():
            obs[image_key(name, 'rgb')] = spaces.Box(0, 255, (cam.height, cam.width, 3),
                                                     np.uint8)
            if cam.depth:
                obs[image_key(name, 'depth')] = spaces.Box(0.0, inf, (cam.height, cam.width, 1),
                                                           np.float32)
        return spaces.Dict(obs)

    def _observed_cameras(self) -> Dict[str, CameraConfig]:
        return self.config.enabled_cameras if self.config.camera_observations else {}

    # ---- fine-grained interface (used by step() and by the ROS sim node) ----

    @property
    def sim_time_s(self) -> float:
        """Return the simulated time since reset (s)."""
        return self._physics_steps * self._scene.dt_s

    @property
    def goal_pose(self) -> np.ndarray:
        """Goal (target-zone) pose [x, y, z, qw, qx, qy, qz]; a fixed dummy without a goal."""
        return self._goal.copy()

    def check_command(self, cmd8: Any) -> np.ndarray:
        """Validate a command (``joint_names`` order), clip it into the limits (class doc)."""
        names = self.joint_names
        try:
            cmd = np.asarray(cmd8, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(f'command must be {len(names)} numbers in {names} order: '
                             f'{err}') from err
        if cmd.shape != (len(names),):
            raise ValueError(f'command must have shape ({len(names)},) ({", ".join(names)}), '
                             f'got shape {cmd.shape}')
        # One vectorised test on the hot path; the detailed diagnosis only on failure.
        # (NaN fails both comparisons, so it lands in the diagnosis too.)
        if not ((cmd >= self._lower_tol).all() and (cmd <= self._upper_tol).all()):
            bad = ~np.isfinite(cmd)
            if bad.any():
                bad_names = [names[i] for i in np.flatnonzero(bad)]
                raise ValueError(f'command has NaN/Inf for {bad_names}: '
                                 f'{np.array2string(cmd, precision=4)}')
            i = int(np.flatnonzero((cmd < self._lower_tol) | (cmd > self._upper_tol))[0])
            raise ValueError(
                f'command for {names[i]} = {cmd[i]:.4g} is outside its limits '
                f'[{self._lower[i]:.4f}, {self._upper[i]:.4f}] by more than the tolerance '
                f'{self._tolerance[i]}')
        return np.minimum(np.maximum(cmd, self._lower), self._upper)

    def set_joint_targets(self, cmd8: Any) -> None:
        """Validate, clip and apply joint-position targets (held until the next call)."""
        self._targets = self.check_command(cmd8)
        self._scene.set_joint_targets(self._targets)

    def step_physics(self, n: int = 1) -> None:
        """Advance ``n`` physics steps and update the success hold timer."""
        if int(n) < 0:
            raise ValueError(f'n must be a non-negative number of physics steps, got {n}')
        self._scene.step(int(n))
        self._cache.clear()
        self._physics_steps += int(n)
        if self._lift_rule:
            self._held_s = self._held_s + n * self._scene.dt_s if self._lifted() else 0.0

    def joint_state(self) -> Tuple[Tuple[str, ...], np.ndarray, np.ndarray, np.ndarray]:
        """Return (names, position, velocity, effort) of the state joints (/joint_states)."""
        pos, vel, eff = self._joints()
        return self.state_joint_names, pos.copy(), vel.copy(), eff.copy()

    def object_pose(self) -> np.ndarray:
        """Cube pose [x, y, z, qw, qx, qy, qz]."""
        return self._cube_pose().copy()

    def set_object_pose(self, pose7: Any) -> None:
        """Teleport the cube to [x, y, z, qw, qx, qy, qz] at rest (scene set-up, tests)."""
        pose = np.asarray(pose7, dtype=np.float64)
        if pose.shape != (7,) or not np.all(np.isfinite(pose)):
            raise ValueError(f'pose must be 7 finite numbers [x, y, z, qw, qx, qy, qz], '
                             f'got {pose7!r}')
        pose[3:] /= np.linalg.norm(pose[3:])
        self._scene.set_body_pose(self._scene.cube, pose)
        self._cache.clear()

    def observation(self) -> Dict[str, np.ndarray]:
        """Build the observation dict of the current state."""
        pos, vel, _ = self._joints()
        f32 = np.float32
        n = self.robot.action_dim
        obs = {'joint_pos': pos[:n].astype(f32), 'joint_vel': vel[:n].astype(f32),
               'gripper_width': np.array([self._width(pos)], dtype=f32),
               'ee_pose': self._ee_pose().astype(f32),
               'object_pose': self._cube_pose().astype(f32)}
        if self.task_spec.has_goal:
            obs['goal_pose'] = self._goal.astype(f32)
        for name in self._observed_cameras():
            rgb, depth = self.camera_image(name)
            obs[image_key(name, 'rgb')] = rgb
            if depth is not None:
                obs[image_key(name, 'depth')] = depth
        return obs

    def camera_image(self, name: str = 'scene') -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """Render camera ``name``: rgb (H, W, 3) uint8, depth (H, W, 1) m or None."""
        cam = self.config.cameras.get(name)
        if cam is None or not cam.enabled:
            raise ValueError(f'camera {name!r} is not enabled; enabled: '
                             f'{sorted(self.config.enabled_cameras)}')
        return self._scene.image(cam.width, cam.height, cam, cam.depth)

    def is_success(self) -> bool:
        """Return whether the task is accomplished in the current state."""
        if self._lift_rule:
            return self._held_s >= self.config.lift_hold_s - 1e-9
        return self._placed()

    # ---- task conditions and reward ----

    def _grasped(self) -> bool:
        left, right = self._contacts()
        return left and right

    def _lift_height_m(self) -> float:
        return float(self._cube_pose()[2]) - self._cube_rest_z

    def _lifted(self) -> bool:
        return self._lift_height_m() >= self.config.lift_height_m and self._grasped()

    def _goal_dist_m(self) -> float:
        cube = self._cube_pose()
        return math.hypot(float(cube[0]) - self._goal_xy[0], float(cube[1]) - self._goal_xy[1])

    def _in_zone(self) -> bool:
        return self._goal_dist_m() <= self.config.goal_radius_m and self._lift_height_m() < 0.01

    def _width(self, pos: np.ndarray) -> float:
        return float(sum(pos[i] for i in self._width_at))

    def _gripper_open(self) -> bool:
        grip = self.robot.gripper
        if grip.kind == 'finger':
            pos, _, _ = self._joints()
            return self._width(pos) >= self.config.open_gripper_width_m
        if not grip.commanded:
            return True
        pos, _, _ = self._joints()
        return (float(pos[self._grip_at]) - grip.closed) / (grip.open - grip.closed) >= 0.75

    def _placed(self) -> bool:
        cfg = self.config
        return (self._in_zone() and self._gripper_open()
                and not any(self._contacts())
                and self._cached('speed', self._scene.cube_speed_m_s) < cfg.rest_speed_m_s)

    def reward(self) -> float:
        """Dense shaped reward of the current state (reach, grasp, lift / carry, place)."""
        # Plain floats and math: this runs every step and numpy's per-call cost dominates.
        reach_m = math.dist(self._ee_pose()[:3].tolist(), self._cube_pose()[:3].tolist())
        reward = 1.0 - math.tanh(10.0 * reach_m)
        grasped = float(self._grasped())
        height = self._lift_height_m()
        if self._lift_rule:
            lift_frac = min(max(height / self.config.lift_height_m, 0.0), 1.0)
            return reward + 0.5 * grasped + 2.0 * grasped * lift_frac
        in_zone = self._in_zone()
        reward += 0.5 * grasped + 0.5 * grasped * min(max(height / 0.05, 0.0), 1.0)
        if grasped or in_zone:
            reward += 2.0 * (1.0 - math.tanh(5.0 * self._goal_dist_m()))
        if in_zone and not any(self._contacts()):
            reward += 1.0
        return reward

    # ---- gymnasium API ----

    def reset(self, *, seed: Optional[int] = None,
              options: Optional[Dict[str, Any]] = None) -> Tuple[Dict[str, np.ndarray], Dict]:
        """Restore the scene, draw the cube pose (and target zone), return (obs, info)."""
        super().reset(seed=seed)
        cfg = self.config
        rng = self.np_random
        self._scene.restore_initial()
        self._cache.clear()
        q = self._home.copy()
        arm = [i for i in range(len(q)) if i != self._grip_at]
        q[arm] += rng.normal(0.0, cfg.init_joint_noise_rad, len(arm))
        q = np.clip(q, self._lower, self._upper)
        self._scene.reset_joints(q)
        self._targets = q
        half = np.asarray(cfg.spawn_size_xy_m) / 2.0
        xy = np.asarray(cfg.spawn_center_xy_m) + rng.uniform(-half, half)
        yaw = rng.uniform(*cfg.spawn_yaw_range_rad)
        cube = np.array([xy[0], xy[1], self._cube_rest_z,
                         np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])
        self._scene.set_body_pose(self._scene.cube, cube)
        if self.task_spec.has_goal:
            self._goal = self._draw_goal(xy, rng)
            self._goal_xy = (float(self._goal[0]), float(self._goal[1]))
            self._scene.set_body_pose(self._scene.zone, self._goal)
        self._physics_steps = 0
        self._steps = 0
        self._held_s = 0.0
        self._cache.clear()
        return self.observation(), {'is_success': False}

    def _draw_goal(self, cube_xy: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        cfg = self.config
        # The zone must not overlap the cube's footprint (half-diagonal) plus a clearance.
        min_dist = cfg.goal_radius_m + cfg.cube_size_m * np.sqrt(0.5) + cfg.goal_clearance_m
        half = np.asarray(cfg.goal_size_xy_m) / 2.0
        for _ in range(1000):
            xy = np.asarray(cfg.goal_center_xy_m) + rng.uniform(-half, half)
            if np.linalg.norm(xy - cube_xy) >= min_dist:
                return np.array([xy[0], xy[1], 0.0, 1.0, 0.0, 0.0, 0.0])
        raise ValueError(f'goal region {cfg.goal_center_xy_m} +- {half} leaves no zone '
                         f'{min_dist:.3f} m away from the cube; enlarge goal_size_xy_m')

    def step(self, action: Any) -> Tuple[Dict[str, np.ndarray], float, bool, bool, Dict]:
        """Apply one action for one control period; return gymnasium's 5-tuple."""
        self.set_joint_targets(action)
        self.step_physics(self._physics_per_control)
        self._steps += 1
        success = self.is_success()
        reward = self.reward() + (self.config.success_bonus if success else 0.0)
        truncated = self._steps >= self.config.max_episode_steps and not success
        info = {'is_success': success, 'sim_time_s': self.sim_time_s}
        return self.observation(), reward, success, truncated, info

    def render(self) -> Optional[np.ndarray]:
        """Return an RGB frame (rgb_array) or nothing (human: the GUI window shows the scene)."""
        if self.render_mode == 'rgb_array':
            rgb, _ = self._scene.image(self.config.render_width, self.config.render_height,
                                       _RENDER_CAMERA, depth=False)
            return rgb
        return None

    def close(self) -> None:
        """Release the PyBullet client."""
        if getattr(self, '_scene', None) is not None:
            self._scene.close()
            self._scene = None

    def config_dict(self) -> Dict[str, Any]:
        """Return the task configuration as plain data (for logs and metadata)."""
        return asdict(self.config)
