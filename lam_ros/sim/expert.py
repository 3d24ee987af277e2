"""
A scripted expert that plays the operator: top-down grasp, lift or carry and place.

It reads only what a robot also publishes over ROS (``joint_pos``, ``object_pose``,
``goal_pose``) and plans with its own ``ArmKinematics`` of the robot description (any arm,
any gripper kind but ``none``), so the teleop node can run it
from topics exactly as it runs here against ``GraspEnv``.
"""

from dataclasses import dataclass, field
from typing import Callable, Dict, Mapping, Optional, Union

from lam_ros.description import get_task, LIFT_AND_HOLD, load_robot, RobotDescription
from lam_ros.sim.kinematics import ArmKinematics, orientation_error_rad, top_down_quat, yaw_of
import numpy as np

_OPEN, _CLOSED = 1.0, 0.0

DEFAULT_NOISE_STD = 0.005
"""Default demonstration noise (m): waypoint scatter and smooth wander of the hand; varied
demonstrations that behaviour cloning learns well (lam-ros expert and lam-ros demos)."""


@dataclass
class ExpertConfig:
    """Waypoints and speeds of the scripted expert."""

    control_rate_hz: float = field(default_factory=lambda: load_robot().control_rate_hz)
    """Rate at which ``act`` is called (Hz; default: the robot description's)."""
    max_speed_m_s: float = 0.35
    """Top speed of the Cartesian target (m/s)."""
    max_turn_rad_s: float = 1.5
    """Top turn rate of the target orientation (rad/s)."""
    pregrasp_height_m: float = 0.10
    """Height of the pre-grasp point above the cube centre (m)."""
    grasp_depth_m: float = 0.0
    """Grasp point below the cube centre (m); 0 grasps at mid-height."""
    lift_height_m: float = 0.20
    """Height above the table the cube is lifted or carried at (m)."""
    place_clearance_m: float = 0.008
    """Gap left under the cube when it is put down (m)."""
    reach_tolerance_m: float = 0.012
    """Hand-to-waypoint distance at which a move counts as done (m)."""
    close_s: float = 0.5
    """Time allowed for the fingers to close (s)."""
    open_s: float = 0.4
    """Time allowed for the fingers to open (s)."""
    phase_timeout_s: float = 4.0
    """A move that has not converged after this long gives way to the next phase (s)."""
    lost_distance_m: float = 0.05
    """Cube farther than this from the hand while carrying means it slipped: grasp again."""
    miss_offset_m: float = 0.045
    """Where a deliberately missed first grasp closes: this far beside the cube (m), along the
    hand's x axis (``reset(miss_first_grasp=True)``)."""


class ScriptedExpert:
    """Waypoint expert for ``lift`` and ``pick_place`` producing joint position commands."""

    def __init__(self, task: str, noise_std: float = 0.0, seed: Optional[int] = None,
                 config: Optional[ExpertConfig] = None,
                 kinematics: Optional[ArmKinematics] = None,
                 robot: Union[None, str, RobotDescription] = None) -> None:
        """
        Create the expert; ``noise_std`` (m) scales human-like variations between demos.

        ``robot`` (default: that of ``kinematics``, else the default robot) fixes the command
        layout: its arm joints and its gripper entry.
        """
        self.task_spec = get_task(task)
        if not np.isfinite(noise_std) or noise_std < 0:
            raise ValueError(f'noise_std must be a finite value >= 0 (m), got {noise_std}')
        self.task = task
        self.noise_std = float(noise_std)
        self.config = config or ExpertConfig()
        self.kin = kinematics or ArmKinematics(robot=robot)
        self.robot = self.kin.robot if robot is None else load_robot(robot)
        if not self.robot.gripper.commanded:
            raise ValueError(f'the scripted expert grasps: robot {self.robot.name!r} has no '
                             'gripper (gripper kind none)')
        names = self.robot.joint_names
        self._arm_at = [names.index(n) for n in self.robot.arm_joint_names]
        self._rng = np.random.default_rng(seed)
        self.reset()

    def reset(self, seed: Optional[int] = None, miss_first_grasp: bool = False) -> None:
        """
        Start a new episode; draws this demonstration's variations.

        miss_first_grasp: the first grasp closes beside the cube (``miss_offset_m``); the
        expert lifts, sees the cube stay behind, opens and grasps again, so the episode
        demonstrates a recovery. The other variations are those of the seed without it.
        """
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        s = self.noise_std
        rng = self._rng
        self.phase = 'approach'
        self._phase_steps = 0
        self._cmd_q: Optional[np.ndarray] = None
        self._cmd_pos: Optional[np.ndarray] = None
        self._cmd_quat: Optional[np.ndarray] = None
        self._finger = _OPEN
        self._grasp_yaw: Optional[float] = None
        self._cube_rest_z = 0.0
        # Per-demo scatter: where on the cube, how high, how fast, how square to the cube.
        self._grasp_offset = np.clip(rng.normal(0.0, 0.4 * s, 2), -0.008, 0.008)
        self._pregrasp_dh = float(np.clip(rng.normal(0.0, 2.0 * s), -0.03, 0.04))
        self._lift_dh = float(np.clip(rng.normal(0.0, 2.0 * s), -0.04, 0.05))
        self._place_offset = np.clip(rng.normal(0.0, 1.0 * s, 2), -0.02, 0.02)
        self._yaw_offset = float(np.clip(rng.normal(0.0, 5.0 * s), -0.1, 0.1))
        self._speed = float(np.clip(1.0 + rng.normal(0.0, 15.0 * s), 0.6, 1.4))
        self._pause_steps = int(rng.integers(0, 3)) if s > 0 else 0
        self._wander = np.zeros(3)
        # Drawn last, so that the variations above stay those of the seed.
        self._miss_side = float(rng.choice((-1.0, 1.0))) if miss_first_grasp else 0.0

    @property
    def grasp_yaw_rad(self) -> Optional[float]:
        """Yaw (rad) of the planned top-down grasp, None before the cube was seen."""
        return self._grasp_yaw

    # ---- helpers ----

    def _dt(self) -> float:
        return 1.0 / self.config.control_rate_hz

    def _grasp_quat(self, cube_quat: np.ndarray) -> np.ndarray:
        if self._grasp_yaw is None:
            # The cube looks the same every 90 deg: pick the face pair closest to the hand's
            # neutral yaw (0) so the wrist stays mid-range.
            cube_yaw = yaw_of(cube_quat)
            yaw = (cube_yaw + np.pi / 4) % (np.pi / 2) - np.pi / 4
            self._grasp_yaw = float(yaw + self._yaw_offset)
        return top_down_quat(self._grasp_yaw)

    def _grasp_point(self, cube: np.ndarray) -> np.ndarray:
        """Where the hand closes for the cube pose (after _grasp_quat has fixed the yaw)."""
        grasp = cube[:3].copy()
        grasp[:2] += self._grasp_offset
        if self._miss_side:
            yaw = self._grasp_yaw
            grasp[:2] += self._miss_side * self.config.miss_offset_m * np.array(
                [np.cos(yaw), np.sin(yaw)])
        grasp[2] -= self.config.grasp_depth_m
        return grasp

    def _move_toward(self, pos: np.ndarray, quat: np.ndarray) -> float:
        """Step the commanded pose toward a waypoint; return the remaining distance (m)."""
        cfg = self.config
        step = cfg.max_speed_m_s * self._speed * self._dt()
        delta = pos - self._cmd_pos
        dist = float(np.linalg.norm(delta))
        self._cmd_pos = pos.copy() if dist <= step else self._cmd_pos + delta * (step / dist)
        turn = orientation_error_rad(self._cmd_quat, quat)
        max_turn = cfg.max_turn_rad_s * self._dt()
        frac = 1.0 if turn <= max_turn else max_turn / turn
        self._cmd_quat = _slerp(self._cmd_quat, quat, frac)
        return dist

    def _update_wander(self, scale: float) -> np.ndarray:
        # Ornstein-Uhlenbeck wander: smooth, zero-mean, like a hand that is not quite steady.
        theta = 2.0 * self._dt()
        sigma = self.noise_std * np.sqrt(2.0 * theta)
        self._wander += -theta * self._wander + sigma * self._rng.normal(0.0, 1.0, 3)
        return self._wander * scale

    def _next_phase(self, phase: str) -> None:
        self.phase = phase
        self._phase_steps = 0

    # ---- policy ----

    def act(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        """Return the next command (the robot's ``joint_names`` order) for an observation."""
        for key in ('joint_pos',) + self.task_spec.pose_keys:
            if key not in obs:
                raise ValueError(f'observation lacks {key!r}; the {self.task} expert needs '
                                 f'{("joint_pos",) + self.task_spec.pose_keys}')
        q = np.asarray(obs['joint_pos'], dtype=np.float64)[self._arm_at]
        cube = np.asarray(obs['object_pose'], dtype=np.float64)
        ee_pos, ee_quat = self.kin.fk(q)
        if self._cmd_q is None:
            self._cmd_q, self._cmd_pos, self._cmd_quat = q.copy(), ee_pos, ee_quat
            # The cube starts on the table: its height now is where it rests when put down.
            self._cube_rest_z = float(cube[2])
        cfg = self.config
        self._phase_steps += 1
        timed_out = self._phase_steps * self._dt() > cfg.phase_timeout_s
        quat = self._grasp_quat(cube[3:])
        grasp = self._grasp_point(cube)
        wander = np.zeros(3)
        if self.phase in ('lift', 'carry', 'lower') and (
                np.linalg.norm(ee_pos - cube[:3]) > cfg.lost_distance_m):
            self._grasp_yaw = None
            quat = self._grasp_quat(cube[3:])
            self._finger = _OPEN
            self._miss_side = 0.0  # the deliberate miss is spent: grasp properly now
            grasp = self._grasp_point(cube)
            self._next_phase('regrasp_up')
        if self.phase == 'regrasp_up':
            target = ee_pos + np.array([0.0, 0.0, 0.05])
            target[2] = max(target[2], grasp[2] + cfg.pregrasp_height_m)
            self._move_toward(target, quat)
            if self._phase_steps > 6:
                self._next_phase('approach')
        elif self.phase == 'approach':
            target = grasp + np.array([0.0, 0.0, cfg.pregrasp_height_m + self._pregrasp_dh])
            dist = self._move_toward(target, quat)
            wander = self._update_wander(min(1.0, dist / 0.1))
            reached = np.linalg.norm(ee_pos - target) < cfg.reach_tolerance_m
            if (reached and orientation_error_rad(ee_quat, quat) < 0.08) or timed_out:
                self._next_phase('descend')
        elif self.phase == 'descend':
            self._move_toward(grasp, quat)
            if np.linalg.norm(ee_pos - grasp) < 0.006 or timed_out:
                self._next_phase('close')
        elif self.phase == 'close':
            self._move_toward(grasp, quat)
            self._finger = _CLOSED
            if self._phase_steps * self._dt() >= cfg.close_s + self._pause_steps * self._dt():
                lifting = self.task_spec.success_rule == LIFT_AND_HOLD
                self._next_phase('lift' if lifting else 'carry')
        elif self.phase == 'lift':
            target = np.array([cube[0], cube[1], cfg.lift_height_m + self._lift_dh])
            self._move_toward(np.array([self._cmd_pos[0], self._cmd_pos[1], target[2]]),
                              self._cmd_quat)
        elif self.phase in ('carry', 'lower'):
            goal = np.asarray(obs['goal_pose'], dtype=np.float64)
            above = np.array([goal[0] + self._place_offset[0], goal[1] + self._place_offset[1],
                              cfg.lift_height_m + self._lift_dh])
            # Keep the cube-in-hand offset so the cube, not the hand, lands on the goal.
            hand_minus_cube = ee_pos[:2] - cube[:2]
            above[:2] += hand_minus_cube
            if self.phase == 'carry':
                if self._cmd_pos[2] < above[2] - 0.03:
                    dist = self._move_toward(np.array([*self._cmd_pos[:2], above[2]]),
                                             self._cmd_quat)
                else:
                    dist = self._move_toward(above, self._cmd_quat)
                    wander = self._update_wander(min(1.0, dist / 0.1))
                    if (np.linalg.norm(ee_pos[:2] - above[:2]) < cfg.reach_tolerance_m
                            and dist < 0.004) or timed_out:
                        self._next_phase('lower')
            else:
                drop = ee_pos[2] - cube[2]
                low = np.array([*above[:2], self._cube_rest_z + drop + cfg.place_clearance_m])
                self._move_toward(low, self._cmd_quat)
                if abs(ee_pos[2] - low[2]) < 0.006 or timed_out:
                    self._next_phase('open')
        elif self.phase == 'open':
            self._finger = _OPEN
            if self._phase_steps * self._dt() >= cfg.open_s:
                self._next_phase('retreat')
        elif self.phase == 'retreat':
            self._finger = _OPEN
            self._move_toward(np.array([*self._cmd_pos[:2], cfg.lift_height_m]),
                              self._cmd_quat)
        self._cmd_q = self.kin.ik(self._cmd_pos + wander, self._cmd_quat, self._cmd_q)
        cmd = np.empty(self.robot.action_dim)
        cmd[self._arm_at] = self._cmd_q
        cmd[self.robot.gripper_index] = self.robot.gripper.action(self._finger)
        return cmd


def _slerp(q0: np.ndarray, q1: np.ndarray, frac: float) -> np.ndarray:
    q0 = np.asarray(q0, dtype=np.float64)
    q1 = np.asarray(q1, dtype=np.float64)
    if np.dot(q0, q1) < 0.0:
        q1 = -q1
    dot = float(np.clip(np.dot(q0, q1), -1.0, 1.0))
    if dot > 0.9995:
        out = q0 + frac * (q1 - q0)
    else:
        angle = np.arccos(dot)
        out = (np.sin((1 - frac) * angle) * q0 + np.sin(frac * angle) * q1) / np.sin(angle)
    return out / np.linalg.norm(out)


def evaluate_expert(task: str, episodes: int = 100, seed: int = 0,
                    noise_std: float = DEFAULT_NOISE_STD,
                    on_episode: Optional[Callable[[int, bool], None]] = None,
                    robot: str = '') -> Dict:
    """
    Run the expert for ``episodes`` seeded episodes; return success rate and statistics.

    Episode ``i`` uses seed ``seed + i`` for both the env and the expert's noise.
    """
    from lam_ros.sim import make_env
    if int(episodes) < 1:
        raise ValueError(f'episodes must be >= 1, got {episodes}')
    env = make_env(task, robot=robot)
    expert = ScriptedExpert(task, noise_std=noise_std, seed=seed, robot=env.robot)
    successes, steps, returns = [], [], []
    try:
        for i in range(int(episodes)):
            obs, info = env.reset(seed=seed + i)
            expert.reset(seed=seed + i)
            total, done, n = 0.0, False, 0
            while not done:
                obs, reward, terminated, truncated, info = env.step(expert.act(obs))
                total += reward
                n += 1
                done = terminated or truncated
            successes.append(bool(info['is_success']))
            steps.append(n)
            returns.append(total)
            if on_episode is not None:
                on_episode(i, successes[-1])
    finally:
        env.close()
        expert.kin.close()
    ok_steps = [n for n, ok in zip(steps, successes) if ok]
    return {'task': task, 'robot': env.robot.name, 'episodes': int(episodes), 'seed': int(seed),
            'noise_std': float(noise_std), 'success_rate': float(np.mean(successes)),
            'successes': int(np.sum(successes)), 'mean_steps': float(np.mean(steps)),
            'mean_steps_success': float(np.mean(ok_steps)) if ok_steps else None,
            'mean_return': float(np.mean(returns)),
            'failed_seeds': [seed + i for i, ok in enumerate(successes) if not ok]}


__all__ = ['DEFAULT_NOISE_STD', 'ExpertConfig', 'ScriptedExpert', 'evaluate_expert']
