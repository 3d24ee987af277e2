"""Scripted-expert demonstrations from the simulator, written as recorder bags (no ROS).

The bags carry the topics, types and rates that ``sim_node`` publishes and
``recorder_node`` records (``/joint_states`` with all 9 joints, the command on
``/forward_position_controller/commands``, object/goal poses, ``/task_success``, optionally
the camera), stamped with simulated time, so a dataset cannot tell the two sources apart.
"""

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Union

import numpy as np

from lam_ros.data import messages as m
from lam_ros.data.record_config import PANDA_JOINTS
from lam_ros.data.recording import DatasetRecorder

COMMAND_TOPIC = '/forward_position_controller/commands'
BASE_FRAME = 'panda_link0'
CAMERA_FRAME = 'sim_camera_optical_frame'


@dataclass
class DemoConfig:
    """What to generate: task, how many episodes, noise, rates and camera."""

    task: str = 'lift'
    """Task: lift or pick_place."""
    episodes: int = 10
    """Number of episodes to record."""
    seed: int = 0
    """Seed of the first episode; episode i uses seed + i for the scene and the expert."""
    noise_std_m: float = 0.01
    """Scripted expert's demonstration noise (m)."""
    joint_state_rate_hz: float = 100.0
    """Rate of /joint_states in simulated time (sim_node's default)."""
    pose_rate_hz: float = 30.0
    """Rate of /object_pose, /goal_pose and /task_success in simulated time."""
    camera: bool = False
    """Record /camera/image_raw (rgb8) and /camera/camera_info."""
    camera_width: int = 84
    """Camera image width (pixels)."""
    camera_height: int = 84
    """Camera image height (pixels)."""
    camera_rate_hz: float = 10.0
    """Camera frame rate in simulated time."""

    def __post_init__(self) -> None:
        """Reject values that cannot produce episodes."""
        if self.task not in ('lift', 'pick_place'):
            raise ValueError(f"task must be 'lift' or 'pick_place', got {self.task!r}")
        if int(self.episodes) < 1:
            raise ValueError(f'episodes must be >= 1, got {self.episodes}')
        if not (math.isfinite(self.noise_std_m) and self.noise_std_m >= 0):
            raise ValueError(f'noise_std_m must be a finite value >= 0 (m), got '
                             f'{self.noise_std_m}')
        for name in ('joint_state_rate_hz', 'pose_rate_hz', 'camera_rate_hz'):
            if not getattr(self, name) > 0:
                raise ValueError(f'{name} must be > 0, got {getattr(self, name)}')


def demo_topics(task: str, camera: bool) -> Dict[str, str]:
    """Return topic -> message type of the bags that ``record_demos`` writes."""
    topics = {'/joint_states': m.JOINT_STATE, COMMAND_TOPIC: m.FLOAT64_ARRAY,
              '/object_pose': m.POSE_STAMPED, '/task_success': m.BOOL}
    if task == 'pick_place':
        topics['/goal_pose'] = m.POSE_STAMPED
    if camera:
        topics['/camera/image_raw'] = m.IMAGE
        topics['/camera/camera_info'] = m.CAMERA_INFO
    return topics


def _intrinsics(width: int, height: int, fov_y_deg: float) -> np.ndarray:
    """Pinhole K of the sim camera (the same as sim_node publishes)."""
    f = 0.5 * height / math.tan(math.radians(fov_y_deg) / 2.0)
    return np.array([[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0],
                     [0.0, 0.0, 1.0]])


class _Episode:
    """Runs one expert episode physics step by physics step and emits its messages."""

    def __init__(self, env: Any, expert: Any, cfg: DemoConfig, rec: DatasetRecorder) -> None:
        self.env, self.expert, self.cfg, self.rec = env, expert, cfg, rec
        self.next_state_s = self.next_pose_s = self.next_camera_s = 0.0
        cam = env.config.camera
        self.k = _intrinsics(cam.width, cam.height, cam.fov_deg)

    def _emit(self, force: bool = False) -> None:
        env, cfg, rec = self.env, self.cfg, self.rec
        t_s = env.sim_time_s
        ns = int(round(t_s * 1e9))
        if force or t_s >= self.next_state_s - 1e-9:
            self.next_state_s += 1.0 / cfg.joint_state_rate_hz
            names, pos, vel, eff = env.joint_state()
            rec.write('/joint_states', ns, m.joint_state(ns, names, pos, vel, eff))
        if force or t_s >= self.next_pose_s - 1e-9:
            self.next_pose_s += 1.0 / cfg.pose_rate_hz
            rec.write('/object_pose', ns, m.pose_stamped(ns, BASE_FRAME, env.object_pose()))
            if cfg.task == 'pick_place':
                rec.write('/goal_pose', ns, m.pose_stamped(ns, BASE_FRAME, env.goal_pose))
            rec.write('/task_success', ns, m.bool_msg(env.is_success()))
        if cfg.camera and (force or t_s >= self.next_camera_s - 1e-9):
            self.next_camera_s += 1.0 / cfg.camera_rate_hz
            rgb, _ = env.camera_image()
            rec.write('/camera/image_raw', ns, m.image(ns, CAMERA_FRAME, rgb))
            rec.write('/camera/camera_info', ns,
                      m.camera_info(ns, CAMERA_FRAME, rgb.shape[1], rgb.shape[0], self.k))

    def run(self) -> bool:
        """Play the episode to success or the step limit; return success."""
        env = self.env
        obs = env.observation()
        self._emit(force=True)
        per_control = env.config.physics_steps_per_control
        for _ in range(env.config.max_episode_steps):
            command = env.check_command(self.expert.act(obs))
            env.set_joint_targets(command)
            ns = int(round(env.sim_time_s * 1e9))
            self.rec.write(COMMAND_TOPIC, ns, m.float64_array(command))
            for _ in range(per_control):
                env.step_physics(1)
                self._emit()
            if env.is_success():
                # The bag ends on the outcome dataset.yaml records, off the pose schedule too.
                self.rec.write('/task_success', int(round(env.sim_time_s * 1e9)),
                               m.bool_msg(True))
                return True
            obs = env.observation()
        return False


def record_demos(cfg: DemoConfig, output_dir: Union[str, Path],
                 on_episode: Optional[Callable[[int, bool], None]] = None) -> Dict[str, Any]:
    """Record ``cfg.episodes`` scripted-expert episodes into ``output_dir``; return a summary.

    Appends to an existing dataset of the same robot and task.
    """
    from lam_ros.sim import CameraConfig, make_env, ScriptedExpert
    cam = CameraConfig(enabled=False, width=cfg.camera_width, height=cfg.camera_height,
                       depth=False)
    # The camera stays out of the observation so each frame is rendered only at its own rate.
    env = make_env(cfg.task, camera=cam)
    expert = ScriptedExpert(cfg.task, noise_std=cfg.noise_std_m, seed=cfg.seed)
    rates = {'control_rate_hz': float(env.config.control_rate_hz),
             'state_rate_hz': float(cfg.joint_state_rate_hz)}
    if cfg.camera:
        rates['camera_rate_hz'] = float(cfg.camera_rate_hz)
    results = []
    try:
        with DatasetRecorder(output_dir, 'panda', PANDA_JOINTS, demo_topics(cfg.task, cfg.camera),
                             rates, cfg.task, action_topic=COMMAND_TOPIC) as rec:
            for i in range(int(cfg.episodes)):
                env.reset(seed=cfg.seed + i)
                expert.reset(seed=cfg.seed + i)
                rec.start_episode()
                success = _Episode(env, expert, cfg, rec).run()
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
