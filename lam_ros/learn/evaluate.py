"""
Closed-loop evaluation of a policy in the PyBullet tasks.

Every rollout goes through :class:`lam_ros.policy.runner.PolicyRunner`, the same history,
chunking and temporal ensembling as the inference node on a robot, and every action through
:class:`lam_ros.control.gate.CommandGate`, the command gate that stands before any arm.
Episode ``i`` uses env seed ``seed + i``; evaluation seeds start at ``EVAL_SEED_START`` by
default so that they never coincide with demonstration seeds, which count up from 0.
"""

import math
import os
import time
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

from lam_ros.control.gate import CommandGate, GateConfig
from lam_ros.description.robot import load_robot
from lam_ros.policy import load_checkpoint, TransformerPolicy
from lam_ros.policy.config import camera_name, image_key
from lam_ros.policy.runner import PolicyRunner
import numpy as np

EVAL_SEED_START = 1_000_000
"""First env seed of an evaluation; demos use seeds 0, 1, 2, ... (lam-ros demos --seed 0)."""


def wilson_interval(successes: int, trials: int, z: float = 1.959964) -> Tuple[float, float]:
    """Return the Wilson score interval (95 % by default) of a success rate."""
    if trials <= 0:
        raise ValueError(f'trials must be > 0, got {trials}')
    if not 0 <= successes <= trials:
        raise ValueError(f'successes must be in [0, trials={trials}], got {successes}')
    p = successes / trials
    denom = 1.0 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def _load(checkpoint_or_model: Union[str, TransformerPolicy], device: str
          ) -> Tuple[TransformerPolicy, Dict[str, Any]]:
    if isinstance(checkpoint_or_model, TransformerPolicy):
        return checkpoint_or_model, {}
    if isinstance(checkpoint_or_model, (str, os.PathLike)):
        return load_checkpoint(checkpoint_or_model, device=device)
    raise ValueError(f'expected a checkpoint directory or a TransformerPolicy, got '
                     f'{type(checkpoint_or_model).__name__}')


def camera_overrides(config: Any) -> Dict[str, Any]:
    """Return the sim TaskConfig overrides that give the cameras a policy observes."""
    cameras = {}
    for key in config.image_keys:
        height, width = config.obs_spec[key][:2]
        cameras[camera_name(key)] = {
            'enabled': True, 'width': int(width), 'height': int(height),
            'depth': image_key(camera_name(key), 'depth') in config.obs_spec}
    return {'cameras': cameras} if cameras else {}


def make_eval_env(model: TransformerPolicy, task: str, render: bool = False) -> Any:
    """Create the task env at the policy's rate, with the cameras the policy observes."""
    from lam_ros.sim import make_env
    cfg = model.config
    overrides: Dict[str, Any] = {'control_rate_hz': cfg.control_rate_hz,
                                 'robot': cfg.robot or '', **camera_overrides(cfg)}
    env = make_env(task, render_mode='rgb_array' if render else None, **overrides)
    missing = [k for k in cfg.obs_spec if k not in env.observation_space.spaces]
    if missing:
        env.close()
        raise ValueError(f'the {task!r} env does not observe {missing} that the policy needs '
                         f'(it has {sorted(env.observation_space.spaces)})')
    return env


def evaluate_policy(checkpoint_or_model: Union[str, TransformerPolicy], task: str,
                    episodes: int = 100, seed: int = EVAL_SEED_START, query_every: int = 1,
                    ensemble_decay: float = 0.01, device: str = 'cpu',
                    video_path: Optional[str] = None, video_episodes: int = 2,
                    on_episode: Optional[Callable[[Dict[str, Any]], None]] = None,
                    gate_config: Optional[GateConfig] = None,
                    env_factory: Union[str, Callable[[], Any], None] = None) -> Dict[str, Any]:
    """
    Roll the policy out for seeded episodes; return success rate and statistics.

    The result has success_rate with its 95 % Wilson interval (success_ci95), mean_return,
    mean_time_to_success_s, mean_policy_ms (one policy call) and per-episode records.
    video_path (.gif, or .mp4 when imageio is installed) records the first video_episodes,
    with what the policy's cameras saw beside each frame (:func:`film_frame`).
    Actions pass the command gate (``gate_config``); ``clipped_steps`` counts the steps it
    changed. env_factory ('package.module:factory' or a callable, docs/env_contract.md)
    replaces the lam_ros task env; task then only labels the result.
    """
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f'episodes must be a positive int, got {episodes!r}')
    if video_path and not video_path.lower().endswith(('.gif', '.mp4')):
        raise ValueError(f'video_path must end in .gif or .mp4, got {video_path!r}')
    model, metadata = _load(checkpoint_or_model, device)
    trained_task = metadata.get('task')
    if trained_task and trained_task != task and env_factory is None:
        raise ValueError(f'the checkpoint was trained on task {trained_task!r}, not {task!r}')
    runner = PolicyRunner(model, query_every=query_every, ensemble_decay=ensemble_decay)
    if env_factory is None:
        env = make_eval_env(model, task, render=bool(video_path))
    else:
        from lam_ros.learn.rl.envs import open_env
        env = open_env(env_factory, model.config.joint_names, model.config.obs_spec)
    dt = 1.0 / model.config.control_rate_hz
    # The env's action space is the robot description's limits; the gate adds the rest.
    gate = CommandGate(load_robot(model.config.robot).joint_limits(model.config.joint_names),
                       model.config.control_rate_hz, gate_config)
    records: List[Dict[str, Any]] = []
    frames: List[np.ndarray] = []
    policy_s, calls = 0.0, 0
    try:
        for i in range(episodes):
            obs, info = env.reset(seed=seed + i)
            runner.reset()
            gate.resync()
            total, steps, clipped, done = 0.0, 0, 0, False
            film = bool(video_path) and i < video_episodes
            while not done:
                if film:
                    frames.append(film_frame(env.render(), obs, model.config))
                t0 = time.perf_counter()
                calls_before = runner.policy_calls
                action = runner.step(obs)
                if runner.policy_calls > calls_before:
                    policy_s += time.perf_counter() - t0
                    calls += 1
                if not gate.update_state(steps * dt, obs['joint_pos']):
                    raise RuntimeError(f'episode {i}: {gate.reason}')
                safe = gate.step(steps * dt, action)
                clipped += int(gate.reason != '' or np.any(np.abs(safe - action) > 1e-9))
                obs, reward, terminated, truncated, info = env.step(safe)
                total += float(reward)
                steps += 1
                done = terminated or truncated
            if film:
                frames.append(film_frame(env.render(), obs, model.config))
            ok = bool(info['is_success'])
            record = {'episode': i, 'seed': seed + i, 'success': ok, 'return': total,
                      'steps': steps, 'time_to_success_s': steps * dt if ok else None,
                      'clipped_steps': clipped}
            records.append(record)
            if on_episode is not None:
                on_episode(record)
    finally:
        env.close()
    successes = sum(r['success'] for r in records)
    low, high = wilson_interval(successes, episodes)
    times = [r['time_to_success_s'] for r in records if r['success']]
    result = {
        'task': task, 'episodes': episodes, 'seed': seed, 'successes': int(successes),
        'success_rate': successes / episodes, 'success_ci95': [low, high],
        'mean_return': float(np.mean([r['return'] for r in records])),
        'mean_time_to_success_s': float(np.mean(times)) if times else None,
        'query_every': query_every, 'ensemble_decay': ensemble_decay,
        'mean_policy_ms': 1000.0 * policy_s / max(calls, 1),
        'num_parameters': model.num_parameters(), 'records': records,
    }
    if video_path:
        result['video'] = write_video(frames, video_path, 1.0 / dt)
    return result


def film_frame(render: np.ndarray, obs: Dict[str, Any], config: Any) -> np.ndarray:
    """
    Return the render frame with what the policy's cameras saw beside it.

    Each camera image of the observation (config.image_keys; depth as grey, near = bright)
    is scaled to the render's height (nearest pixel, so the policy's resolution shows).
    """
    height = render.shape[0]
    panels = [np.asarray(render, dtype=np.uint8)[..., :3]]
    for key in config.image_keys:
        image = np.asarray(obs[key])
        if image.dtype != np.uint8:  # depth (H, W, 1) in metres
            near = 1.0 - np.clip(image / config.depth_max_m, 0.0, 1.0)
            image = np.repeat((255.0 * near).astype(np.uint8), 3, axis=2)
        rows = np.arange(height) * image.shape[0] // height
        width = max(1, round(image.shape[1] * height / image.shape[0]))
        cols = np.arange(width) * image.shape[1] // width
        panels.append(image[rows][:, cols])
    return np.concatenate(panels, axis=1)


def write_video(frames: List[np.ndarray], path: str, fps: float) -> str:
    """Write rgb frames as a GIF (Pillow) or MP4 (imageio, when installed); return path."""
    if not frames:
        raise ValueError('no frames to write')
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if path.lower().endswith('.mp4'):
        try:
            import imageio.v2 as imageio
        except ImportError as err:
            raise ValueError('writing .mp4 needs the imageio package (and imageio-ffmpeg); '
                             'install them or write a .gif') from err
        imageio.mimsave(path, frames, fps=fps)
        return path
    from PIL import Image
    images = [Image.fromarray(np.asarray(f, dtype=np.uint8)) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:],
                   duration=int(round(1000.0 / fps)), loop=0)
    return path
