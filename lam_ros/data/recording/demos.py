"""
Scripted-expert demonstrations from the simulator, written as recorder bags (no ROS).

The bags carry the topics, types and rates that ``sim_node`` publishes and
``recorder_node`` records (``/joint_states`` with all 9 joints, the command on
``/forward_position_controller/commands``, object/goal poses, ``/task_success``, optionally
the cameras: ``/<name>_camera/image_raw``, ``.../depth/image_raw``, ``.../camera_info``),
stamped with simulated time, so a dataset cannot tell the two sources apart.
"""

from dataclasses import dataclass, field
import math
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple, Union

from lam_ros.data import messages as m
from lam_ros.data.recording.recorder import DatasetRecorder
from lam_ros.description import CameraConfig, get_task, load_robot, TOPIC_TYPES
from lam_ros.description.camera import camera_configs, DEFAULT_CAMERAS
from lam_ros.sim.expert import DEFAULT_NOISE_STD
from lam_ros.sim.stream import (
    POSE_RATE_HZ, sample_message, sim_topics, SimDriver, SimStream,
    STATE_RATE_HZ)


@dataclass
class DemoConfig:
    """What to generate: task, how many episodes, noise, rates and camera."""

    task: str = 'lift'
    """Task name (``lam_ros.description.TASK_NAMES``)."""
    episodes: int = 10
    """Number of episodes to record."""
    seed: int = 0
    """Seed of the first episode; episode i uses seed + i for the scene and the expert."""
    noise_std_m: float = DEFAULT_NOISE_STD
    """Scripted expert's demonstration noise (m)."""
    miss_fraction: float = 0.0
    """Fraction of the episodes (evenly spread) whose first grasp closes beside the object:
    the expert lifts, sees it stay behind, opens and grasps again, so the demonstrations show
    a recovery (0..1)."""
    joint_state_rate_hz: float = STATE_RATE_HZ
    """Rate of /joint_states in simulated time (sim_node's default)."""
    pose_rate_hz: float = POSE_RATE_HZ
    """Rate of /object_pose, /goal_pose and /task_success in simulated time."""
    cameras: Any = ()
    """Cameras to record: names (``('scene', 'wrist')`` or ``'scene,wrist'``), each with the
    settings below, or a mapping name -> CameraConfig fields that override them per camera.
    Each records ``<ns>/image_raw`` (rgb8), ``<ns>/camera_info`` and, with depth,
    ``<ns>/depth/image_raw`` (32FC1 m), ``<ns>`` from the robot's ``topics.cameras``."""
    camera_width: int = CameraConfig.width
    """Camera image width (pixels)."""
    camera_height: int = CameraConfig.height
    """Camera image height (pixels)."""
    camera_rate_hz: float = 0.0
    """Camera frame rate in simulated time; 0: the robot's control rate, so every policy step
    has a fresh frame, as the env renders one per step in evaluation."""
    camera_depth: bool = False
    """Also record each camera's depth image."""
    camera_settings: Dict[str, CameraConfig] = field(init=False, repr=False)
    """The resolved settings of the recorded cameras (name -> CameraConfig)."""
    robot: str = ''
    """Robot description (name in config/robots/ or YAML path); '' is the default robot."""

    def __post_init__(self) -> None:
        """Reject values that cannot produce episodes."""
        get_task(self.task)
        if int(self.episodes) < 1:
            raise ValueError(f'episodes must be >= 1, got {self.episodes}')
        if not (math.isfinite(self.noise_std_m) and self.noise_std_m >= 0):
            raise ValueError(f'noise_std_m must be a finite value >= 0 (m), got '
                             f'{self.noise_std_m}')
        if not 0.0 <= self.miss_fraction <= 1.0:
            raise ValueError(f'miss_fraction must be in [0, 1], got {self.miss_fraction}')
        if not self.camera_rate_hz >= 0:
            raise ValueError(f'camera_rate_hz must be >= 0 (0: the control rate), got '
                             f'{self.camera_rate_hz}')
        for name in ('joint_state_rate_hz', 'pose_rate_hz'):
            if not getattr(self, name) > 0:
                raise ValueError(f'{name} must be > 0, got {getattr(self, name)}')
        self.camera_settings = _camera_settings(self)


def _camera_settings(cfg: DemoConfig) -> Dict[str, CameraConfig]:
    """Return name -> settings of the cameras ``cfg`` records."""
    spec = cfg.cameras
    if isinstance(spec, str):
        spec = [s.strip() for s in spec.split(',') if s.strip()]
    if not isinstance(spec, dict):
        if not isinstance(spec, (list, tuple)):
            raise ValueError(f'cameras must be camera names or a mapping, got {spec!r}')
        unknown = [n for n in spec if n not in DEFAULT_CAMERAS]
        if unknown:
            raise ValueError(f'unknown cameras {unknown}; the simulator has '
                             f'{", ".join(DEFAULT_CAMERAS)} (a new camera needs its settings: '
                             'pass a mapping name -> CameraConfig fields)')
        spec = {name: {} for name in spec}
    rate_hz = cfg.camera_rate_hz or load_robot(cfg.robot or None).control_rate_hz
    common = {'enabled': True, 'width': int(cfg.camera_width),
              'height': int(cfg.camera_height), 'rate_hz': float(rate_hz),
              'depth': bool(cfg.camera_depth)}
    merged = camera_configs({name: {**common, **(value or {})} for name, value in spec.items()})
    return {name: merged[name] for name in spec}


def demo_topics(task: str, cameras: Any = (), robot: str = '',
                depth: Tuple[str, ...] = ()) -> Dict[str, str]:
    """Return topic -> message type of the bags that ``record_demos`` writes."""
    desc = load_robot(robot or None)
    roles = ['joint_state', 'object_pose', 'success']
    if get_task(task).has_goal:
        roles.append('goal_pose')
    cameras = tuple(cameras or ())
    for name in cameras:
        roles += [f'{name}/image', f'{name}/camera_info'] + (
            [f'{name}/depth'] if name in depth else [])
    table = sim_topics(desc, cameras)
    topics = {'/' + table[r][0]: table[r][1] for r in roles}
    topics[desc.topics.command] = TOPIC_TYPES['command']
    return topics


def _run_episode(env: Any, expert: Any, cfg: DemoConfig, rec: DatasetRecorder) -> bool:
    """Play one expert episode to success or the step limit, writing what sim_node would."""
    robot = env.robot
    stream = SimStream(env, cfg.joint_state_rate_hz, cfg.pose_rate_hz, list(cfg.camera_settings))
    driver = SimDriver(env, stream, robot.joint_names)
    table = sim_topics(robot, stream.cameras)
    frames = {name: robot.frames.camera_frame(name) for name in stream.cameras}

    def write(samples: list) -> None:
        for sample in samples:
            ns = m.seconds_to_ns(sample.t_s)
            rec.write('/' + table[sample.role][0], ns, sample_message(
                m.ROSBAGS, sample, ns, robot.frames.base, frames))

    write(driver.due_now())
    obs = env.observation()
    period_s = env.config.physics_steps_per_control * driver.dt_s
    for _ in range(env.config.max_episode_steps):
        command = env.check_command(expert.act(obs))
        driver.command(command)
        rec.write(robot.topics.command, m.seconds_to_ns(driver.sim_s),
                  m.float64_array(command))
        write(driver.run_until(driver.sim_s + period_s))
        if env.is_success():
            break
        obs = env.observation()
    # The last poses and outcome as the episode ends, as a recorder that stops now keeps them.
    stream.restart(driver.sim_s, state=False)
    write(driver.due_now())
    return bool(env.is_success())


def scene_of(env: Any, seed: Optional[int]) -> Dict[str, Any]:
    """Return what restores the env's current scene: its seed and initial poses (rounded)."""
    scene: Dict[str, Any] = {'seed': seed,
                             'object_pose': [round(float(v), 6) for v in env.object_pose()]}
    if env.task_spec.has_goal:
        scene['goal_pose'] = [round(float(v), 6) for v in env.goal_pose]
    return scene


def misses_first_grasp(index: int, fraction: float) -> bool:
    """Tell whether episode index is one of the evenly spread fraction that miss first."""
    return math.floor((index + 1) * fraction) > math.floor(index * fraction)


def record_demos(cfg: DemoConfig, output_dir: Union[str, Path],
                 on_episode: Optional[Callable[[int, bool], None]] = None) -> Dict[str, Any]:
    """
    Record ``cfg.episodes`` scripted-expert episodes into ``output_dir``; return a summary.

    Appends to an existing dataset of the same robot and task.
    """
    from lam_ros.sim import make_env, ScriptedExpert
    cams = cfg.camera_settings
    # The cameras stay out of the observation so each frame is rendered only at its own rate.
    env = make_env(cfg.task, cameras=cams, camera_observations=False, robot=cfg.robot)
    expert = ScriptedExpert(cfg.task, noise_std=cfg.noise_std_m, seed=cfg.seed, robot=env.robot)
    rates = {'control_rate_hz': float(env.config.control_rate_hz),
             'state_rate_hz': float(cfg.joint_state_rate_hz)}
    for name, cam in cams.items():
        rates[f'{name}_camera_rate_hz'] = float(cam.rate_hz)
    results = []
    robot = env.robot
    topics = demo_topics(cfg.task, tuple(cams), cfg.robot,
                         tuple(n for n, c in cams.items() if c.depth))
    try:
        with DatasetRecorder(output_dir, robot.name, robot.joint_names, topics, rates, cfg.task,
                             action_topic=robot.topics.command,
                             gripper=robot.gripper.to_dict()) as rec:
            for i in range(int(cfg.episodes)):
                env.reset(seed=cfg.seed + i)
                expert.reset(seed=cfg.seed + i, miss_first_grasp=misses_first_grasp(
                    i, cfg.miss_fraction))
                rec.start_episode()
                rec.set_scene(scene_of(env, cfg.seed + i))
                success = _run_episode(env, expert, cfg, rec)
                results.append(rec.stop_episode(success))
                if on_episode is not None:
                    on_episode(i, success)
    finally:
        env.close()
        expert.kin.close()
    return {'task': cfg.task, 'episodes': len(results),
            'successes': sum(bool(e['success']) for e in results),
            'names': [e['name'] for e in results],
            'sim_duration_s': float(sum(e['duration_s'] for e in results))}
