"""Record scripted-expert episodes from the PyBullet task into real rosbag2 bags (test data)."""

from pathlib import Path
from typing import Optional

import numpy as np

from lam_ros.data import messages as m
from lam_ros.data.recording import DatasetRecorder
from lam_ros.sim import ALL_JOINT_NAMES, JOINT_NAMES, make_env, ScriptedExpert

JS, CMD, OBJ, GOAL, OK = ('/joint_states', '/forward_position_controller/commands',
                          '/object_pose', '/goal_pose', '/task_success')
IMG = '/camera/image_raw'
BASE_NS = 1_764_400_000 * 10**9
# The command leaves the controller a moment after the state it was computed from.
CMD_DELAY_NS = 1_000_000


def record_expert_demos(out_dir: Path, task: str = 'lift', episodes: int = 2, seed: int = 0,
                        noise: float = 0.01, camera: Optional[tuple] = None) -> Path:
    """Run the expert for seeded episodes and record each as one MCAP bag; return out_dir."""
    overrides = {}
    if camera:
        overrides['camera'] = {'enabled': True, 'height': camera[0], 'width': camera[1],
                               'depth': False}
    env = make_env(task, **overrides)
    expert = ScriptedExpert(task, noise_std=noise, seed=seed)
    topics = {JS: m.JOINT_STATE, CMD: m.FLOAT64_ARRAY, OBJ: m.POSE_STAMPED, OK: m.BOOL}
    if task == 'pick_place':
        topics[GOAL] = m.POSE_STAMPED
    if camera:
        topics[IMG] = m.IMAGE
    dt_ns = int(round(1e9 / env.config.control_rate_hz))
    try:
        with DatasetRecorder(out_dir, 'panda', list(JOINT_NAMES), topics,
                             {'control_rate_hz': env.config.control_rate_hz}, task,
                             action_topic=CMD) as rec:
            for i in range(episodes):
                obs, info = env.reset(seed=seed + i)
                expert.reset(seed=seed + i)
                rec.start_episode()
                t_ns = BASE_NS + i * 10**11
                done = False
                while True:
                    _write_state(rec, env, obs, t_ns, task, camera)
                    if done:
                        break
                    action = expert.act(obs)
                    rec.write(CMD, t_ns + CMD_DELAY_NS, m.float64_array(action))
                    obs, _, terminated, truncated, info = env.step(action)
                    done = terminated or truncated
                    t_ns += dt_ns
                rec.write(OK, t_ns, m.bool_msg(info['is_success']))
                rec.stop_episode(success=bool(info['is_success']))
    finally:
        env.close()
        expert.kin.close()
    return Path(out_dir)


def _write_state(rec: DatasetRecorder, env, obs, t_ns: int, task: str,
                 camera: Optional[tuple]) -> None:
    names, pos, vel, eff = env.joint_state()
    rec.write(JS, t_ns, m.joint_state(t_ns, names, pos, vel, eff))
    rec.write(OBJ, t_ns, m.pose_stamped(t_ns, 'panda_link0', obs['object_pose']))
    if task == 'pick_place':
        rec.write(GOAL, t_ns, m.pose_stamped(t_ns, 'panda_link0', obs['goal_pose']))
    if camera:
        rec.write(IMG, t_ns, m.image(t_ns, 'camera', np.asarray(obs['rgb'])))


__all__ = ['ALL_JOINT_NAMES', 'record_expert_demos']
