"""
Scripted-expert demonstrations from the simulator, written as recorder bags (no ROS).

The bags carry the topics, types and rates that ``sim_node`` publishes and
``recorder_node`` records (``/joint_states`` with all 9 joints, the command on
``/forward_position_controller/commands``, object/goal poses, ``/task_success``, optionally
the camera), stamped with simulated time, so a dataset cannot tell the two sources apart.
"""

from dataclasses import dataclass
import math
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Union

from lam_ros.data import messages as m
from lam_ros.data.recording.recorder import DatasetRecorder
from lam_ros.description import CameraConfig, get_task, load_robot, TOPIC_TYPES
from lam_ros.sim.expert import DEFAULT_NOISE_STD
from lam_ros.sim.stream import (
    CAMERA_RATE_HZ, POSE_RATE_HZ, sample_message, SIM_TOPICS, SimDriver, SimStream, STATE_RATE_HZ)


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
    joint_state_rate_hz: float = STATE_RATE_HZ
    """Rate of /joint_states in simulated time (sim_node's default)."""
    pose_rate_hz: float = POSE_RATE_HZ
    """Rate of /object_pose, /goal_pose and /task_success in simulated time."""
    camera: bool = False
    """Record /camera/image_raw (rgb8) and /camera/camera_info."""
    camera_width: int = CameraConfig.width
    """Camera image width (pixels)."""
    camera_height: int = CameraConfig.height
    """Camera image height (pixels)."""
    camera_rate_hz: float = CAMERA_RATE_HZ
    """Camera frame rate in simulated time."""
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
        for name in ('joint_state_rate_hz', 'pose_rate_hz', 'camera_rate_hz'):
            if not getattr(self, name) > 0:
                raise ValueError(f'{name} must be > 0, got {getattr(self, name)}')


def demo_topics(task: str, camera: bool, robot: str = '') -> Dict[str, str]:
    """Return topic -> message type of the bags that ``record_demos`` writes."""
    roles = ['joint_state', 'object_pose', 'success']
    if get_task(task).has_goal:
        roles.append('goal_pose')
    if camera:
        roles += ['image', 'camera_info']
    topics = {'/' + SIM_TOPICS[r][0]: SIM_TOPICS[r][1] for r in roles}
    topics[load_robot(robot or None).topics.command] = TOPIC_TYPES['command']
    return topics


def _run_episode(env: Any, expert: Any, cfg: DemoConfig, rec: DatasetRecorder) -> bool:
    """Play one expert episode to success or the step limit, writing what sim_node would."""
    stream = SimStream(env, cfg.joint_state_rate_hz, cfg.pose_rate_hz,
                       cfg.camera_rate_hz if cfg.camera else None)
    robot = env.robot
    driver = SimDriver(env, stream, robot.joint_names)

    def write(samples: list) -> None:
        for sample in samples:
            ns = m.seconds_to_ns(sample.t_s)
            rec.write('/' + SIM_TOPICS[sample.role][0], ns, sample_message(
                m.ROSBAGS, sample, ns, robot.frames.base, robot.frames.camera))

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


def record_demos(cfg: DemoConfig, output_dir: Union[str, Path],
                 on_episode: Optional[Callable[[int, bool], None]] = None) -> Dict[str, Any]:
    """
    Record ``cfg.episodes`` scripted-expert episodes into ``output_dir``; return a summary.

    Appends to an existing dataset of the same robot and task.
    """
    from lam_ros.sim import make_env, ScriptedExpert
    cam = CameraConfig(enabled=False, width=cfg.camera_width, height=cfg.camera_height,
                       depth=False)
    # The camera stays out of the observation so each frame is rendered only at its own rate.
    env = make_env(cfg.task, camera=cam, robot=cfg.robot)
    expert = ScriptedExpert(cfg.task, noise_std=cfg.noise_std_m, seed=cfg.seed, robot=env.robot)
    rates = {'control_rate_hz': float(env.config.control_rate_hz),
             'state_rate_hz': float(cfg.joint_state_rate_hz)}
    if cfg.camera:
        rates['camera_rate_hz'] = float(cfg.camera_rate_hz)
    results = []
    robot = env.robot
    try:
        with DatasetRecorder(output_dir, robot.name, robot.joint_names,
                             demo_topics(cfg.task, cfg.camera, cfg.robot), rates, cfg.task,
                             action_topic=robot.topics.command,
                             gripper=robot.gripper.to_dict()) as rec:
            for i in range(int(cfg.episodes)):
                env.reset(seed=cfg.seed + i)
                expert.reset(seed=cfg.seed + i)
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
