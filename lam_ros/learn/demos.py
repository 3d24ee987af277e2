"""
Demonstrations as training data: checks that a dataset fits a policy, episode splits, windows.

Shared by behaviour cloning and by RL's demonstration term (lam_ros/learn/rl/buffer.py).
"""

from typing import Any, Dict

from lam_ros.data.dataset.build import Dataset
from lam_ros.data.dataset.windows import Windows
from lam_ros.policy import PolicyConfig
import numpy as np
import torch


def check_same_robot(recorded: str, policy_robot: str) -> None:
    """Raise ValueError when a dataset recorded on one arm is to train a policy for another."""
    if not recorded or not policy_robot:
        return
    from lam_ros.description import load_robot
    try:
        target = load_robot(policy_robot).name
    except FileNotFoundError:
        target = policy_robot
    if target != recorded:
        raise ValueError(f'the dataset was recorded on robot {recorded!r} and cannot train a '
                         f'policy for robot {target!r}: their joints and gripper differ. Record '
                         f'demonstrations on {target!r}, or train for {recorded!r}')


def check_compatible(dataset: Dataset, config: PolicyConfig) -> None:
    """Raise ValueError unless the dataset provides every observation and joint the policy uses."""
    if not dataset.episodes:
        raise ValueError('the dataset has no usable episodes; see its exclusion report '
                         '(lam-ros dataset info)')
    check_same_robot(getattr(dataset, 'robot', ''), config.robot)
    if list(dataset.joint_names) != list(config.joint_names):
        raise ValueError(f'the dataset commands joints {list(dataset.joint_names)} but the '
                         f'policy config has {list(config.joint_names)}')
    spec = dataset.observation_spec()
    problems = []
    for key, shape in config.obs_spec.items():
        if key not in spec:
            problems.append(f'{key!r} is not in the dataset')
        elif tuple(spec[key]) != tuple(shape):
            problems.append(f'{key!r} is {tuple(spec[key])} in the dataset, {tuple(shape)} in '
                            'the policy config')
    if problems:
        raise ValueError(f'dataset observation spec {spec} does not fit the policy: '
                         f'{"; ".join(problems)}. Choose observations the dataset has '
                         f'(e.g. --obs {",".join(sorted(spec))}) or rebuild the dataset')
    if abs(dataset.rate_hz - config.control_rate_hz) > 1e-6:
        raise ValueError(f'the dataset is sampled at {dataset.rate_hz} Hz but the policy '
                         f'config says control_rate_hz={config.control_rate_hz}')


def split_episodes(dataset: Dataset, val_fraction: float, seed: int) -> tuple:
    """Return (train, val) episode lists, split by whole episodes with a seeded shuffle."""
    episodes = list(dataset.episodes)
    n_val = int(round(val_fraction * len(episodes))) if val_fraction > 0 else 0
    if val_fraction > 0 and len(episodes) >= 2:
        n_val = min(max(n_val, 1), len(episodes) - 1)
    else:
        n_val = 0
    order = np.random.default_rng(seed).permutation(len(episodes))
    val = [episodes[i] for i in sorted(order[:n_val])]
    train = [episodes[i] for i in sorted(order[n_val:])]
    return train, val


def episode_windows(episodes: list, config: PolicyConfig) -> Windows:
    """Return the training windows (observation history + action chunk) of ``episodes``."""
    keys = list(config.obs_spec)
    return Windows([{k: ep.obs[k] for k in keys} for ep in episodes],
                   [ep.action for ep in episodes], config.history_len, config.chunk_size)


def batch_to_torch(batch: Dict[str, Any], device: torch.device,
                   hold_last_action: bool) -> tuple:
    """Return (obs, obs_mask, action, action_mask) tensors of a Windows batch on ``device``."""
    obs = {k: torch.from_numpy(np.ascontiguousarray(v)).to(device)
           for k, v in batch['obs'].items()}
    # Windows already repeat the last action past the end; holding it means counting it.
    action_mask = np.ones_like(batch['action_mask']) if hold_last_action \
        else batch['action_mask']
    return (obs, torch.from_numpy(batch['obs_mask']).to(device),
            torch.from_numpy(batch['action']).float().to(device),
            torch.from_numpy(action_mask).to(device))
