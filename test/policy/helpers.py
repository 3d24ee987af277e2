"""Shared builders for the policy tests: configs, random observations, a synthetic episode."""

from typing import Dict, Tuple

from lam_ros.policy.config import image_kind, PolicyConfig
from lam_ros.policy.model import TransformerPolicy
from lam_ros.policy.normalization import compute_stats
import numpy as np
import torch

JOINTS = tuple(f'panda_joint{i}' for i in range(1, 8)) + ('panda_finger_joint1',)
STATE = {'joint_pos': (8,), 'joint_vel': (8,)}
POSE = {**STATE, 'object_pose': (7,), 'goal_pose': (7,)}
IMAGE = {**STATE, 'scene_rgb': (24, 32, 3), 'scene_depth': (24, 32, 1)}
SMALL = {'d_model': 32, 'n_heads': 2, 'n_layers': 2, 'dropout': 0.0, 'image_channels': (8, 16)}


def small_config(obs_spec: Dict[str, tuple], **overrides) -> PolicyConfig:
    """Return a small, dropout-free config for fast tests."""
    return PolicyConfig(joint_names=JOINTS, obs_spec=obs_spec, **{**SMALL, **overrides})


def random_obs(config: PolicyConfig, batch: int, seed: int = 0) -> Dict[str, torch.Tensor]:
    """Return random observations (batch, history_len, *shape) in real units."""
    g = torch.Generator().manual_seed(seed)
    obs = {}
    for key, shape in config.obs_spec.items():
        full = (batch, config.history_len) + tuple(shape)
        if image_kind(key) == 'rgb':
            obs[key] = torch.randint(0, 256, full, generator=g, dtype=torch.uint8)
        elif image_kind(key) == 'depth':
            obs[key] = torch.rand(full, generator=g) * 2.0
        else:
            obs[key] = torch.randn(full, generator=g)
    return obs


def synthetic_episode(length: int = 40, seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """Return joint positions (T, 8) along smooth curves and actions = the next position."""
    rng = np.random.default_rng(seed)
    t = np.arange(length + 1)[:, None] / length
    phase, amp = rng.uniform(0, np.pi, 8), rng.uniform(0.2, 1.0, 8)
    pos = (amp * np.sin(2 * np.pi * t + phase)).astype(np.float32)
    pos[:, 7] = 0.02 + 0.02 * np.sin(2 * np.pi * t[:, 0])  # finger in metres
    return pos[:-1], pos[1:]


def episode_batch(config: PolicyConfig, pos: np.ndarray, actions: np.ndarray):
    """Turn one episode into (obs, obs_mask, actions, action_mask) with one sample per step."""
    length, h, k = len(pos), config.history_len, config.chunk_size
    vel = np.gradient(pos, axis=0).astype(np.float32) * config.control_rate_hz
    hist = np.arange(length)[:, None] + np.arange(-h + 1, 1)[None]  # (T, H)
    obs_mask = hist >= 0
    hist = np.clip(hist, 0, None)
    fut = np.arange(length)[:, None] + np.arange(k)[None]  # (T, K)
    action_mask = fut < length
    obs = {'joint_pos': torch.from_numpy(pos[hist]), 'joint_vel': torch.from_numpy(vel[hist])}
    chunks = actions[np.clip(fut, None, length - 1)]
    return (obs, torch.from_numpy(obs_mask), torch.from_numpy(chunks),
            torch.from_numpy(action_mask))


def fitted_model(config: PolicyConfig, pos: np.ndarray, actions: np.ndarray
                 ) -> TransformerPolicy:
    """Build a model whose normaliser is fitted on the episode."""
    model = TransformerPolicy(config)
    vel = np.gradient(pos, axis=0) * config.control_rate_hz
    model.normalizer.fit(compute_stats({'joint_pos': pos, 'joint_vel': vel, 'action': actions}))
    return model
