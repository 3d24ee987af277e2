"""One rollout of transitions as tensors, minibatches over it, and demonstration batches."""

from typing import Any, Dict, List, Optional

import numpy as np
import torch


class Buffer:
    """One rollout, (T, N, ...) tensors."""

    def __init__(self, steps: int, n: int, config: Any, device: torch.device) -> None:
        """Allocate steps transitions of n envs for a policy with this config."""
        h, k, a = config.history_len, config.chunk_size, config.action_dim
        # uint8 camera images are stored as uint8 (4x smaller; the policy normalises them).
        self.obs = {key: torch.zeros((steps, n, h) + tuple(shape), device=device,
                                     dtype=_dtype(config, key))
                    for key, shape in config.obs_spec.items()}
        self.mask = torch.zeros((steps, n, h), dtype=torch.bool, device=device)
        self.actions = torch.zeros((steps, n, k, a), device=device)
        self.ref_mean = torch.zeros((steps, n, k, a), device=device)
        self.critic_in: Optional[torch.Tensor] = None
        self.logp, self.values, self.rewards, self.dones = (
            torch.zeros((steps, n), device=device) for _ in range(4))

    def add(self, t: int, obs: Dict[str, torch.Tensor], mask: torch.Tensor,
            actions: torch.Tensor, logp: torch.Tensor, value: torch.Tensor,
            reward: np.ndarray, done: np.ndarray, ref_mean: torch.Tensor,
            critic_in: torch.Tensor) -> None:
        """Store transition t of every env."""
        for key in self.obs:
            self.obs[key][t] = obs[key]
        self.mask[t], self.actions[t], self.logp[t], self.values[t] = mask, actions, logp, value
        self.ref_mean[t] = ref_mean
        if self.critic_in is None:
            self.critic_in = torch.zeros((self.logp.shape[0],) + tuple(critic_in.shape),
                                         device=critic_in.device)
        self.critic_in[t] = critic_in
        self.rewards[t] = torch.as_tensor(reward, dtype=torch.float32)
        self.dones[t] = torch.as_tensor(done, dtype=torch.float32)

    def flat(self, adv: torch.Tensor, ret: torch.Tensor, ref_std: torch.Tensor) -> Dict:
        """Flatten (T, N) into samples for minibatching."""
        return {'obs': {k: v.flatten(0, 1) for k, v in self.obs.items()},
                'mask': self.mask.flatten(0, 1), 'actions': self.actions.flatten(0, 1),
                'logp': self.logp.flatten(), 'advantages': adv.flatten(),
                'returns': ret.flatten(), 'ref_mean': self.ref_mean.flatten(0, 1),
                'critic_in': self.critic_in.flatten(0, 1),
                'ref_std': ref_std}


def _dtype(config: Any, key: str) -> torch.dtype:
    from lam_ros.policy.config import image_kind
    return torch.uint8 if image_kind(key) == 'rgb' else torch.float32


def minibatches(rng: np.random.Generator, total: int, fraction: float,
                size: int) -> List[np.ndarray]:
    """Split a random fraction of range(total) into minibatches of about size samples."""
    chosen = rng.permutation(total)[:max(1, int(fraction * total))]
    return np.array_split(chosen, max(1, len(chosen) // size))


def select(data: Dict[str, Any], index: torch.Tensor) -> Dict[str, Any]:
    """Return the samples at index of a flattened rollout."""
    out = {k: v[index] for k, v in data.items() if k not in ('obs', 'ref_std', 'critic_in')}
    out['obs'] = {k: v[index] for k, v in data['obs'].items()}
    out['ref_std'] = data['ref_std']
    return out


def demo_windows(demos: Any, config: Any) -> Any:
    """Index every step of the demonstration dataset as a training window."""
    from lam_ros.learn.demos import check_compatible, episode_windows
    check_compatible(demos, config)
    return episode_windows(list(demos.episodes), config)


def demo_batch(windows: Any, batch_size: int, rng: np.random.Generator,
               device: torch.device) -> Optional[tuple]:
    """Draw batch_size demonstration windows as policy.loss arguments (None: no demos)."""
    if windows is None:
        return None
    from lam_ros.learn.demos import batch_to_torch
    return batch_to_torch(windows.batch(rng.integers(0, len(windows), batch_size)), device, True)
