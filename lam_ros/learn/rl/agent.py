"""
The actor-critic that RL fine-tunes: the BC TransformerPolicy itself plus a value head.

The actor is the policy's Gaussian head over the whole action chunk (K x A, normalised
action units): its mean is ``policy(obs)``, its std the policy's own ``log_std``. The critic
is a small MLP that reads the policy's ``features()`` (detached, so value learning never moves
the actor) together with the current normalised vector observation.

A regression-head checkpoint is turned into a Gaussian one with the same weights and a
state-independent log-std, so any BC checkpoint can be fine-tuned.
"""

from typing import Any, Dict, Optional, Tuple

from lam_ros.policy import load_checkpoint, PolicyConfig, TransformerPolicy
from lam_ros.policy.model import Obs
import torch
from torch import nn


def gaussian_policy(policy: TransformerPolicy,
                    init_log_std: Optional[float] = None) -> TransformerPolicy:
    """Return a Gaussian-head copy of policy (same weights); set log_std when given."""
    config = policy.config
    if config.head != 'gaussian':
        data = dict(config.to_dict(), head='gaussian',
                    init_log_std=-1.0 if init_log_std is None else init_log_std)
        config = PolicyConfig.from_dict(data)
    out = TransformerPolicy(config)
    missing, unexpected = out.load_state_dict(policy.state_dict(), strict=False)
    if unexpected or any(k != 'log_std' for k in missing):
        raise ValueError(f'cannot carry the weights over: missing {missing}, unexpected '
                         f'{unexpected}')
    if init_log_std is not None:
        with torch.no_grad():
            out.log_std.fill_(float(init_log_std))
    return out.to(next(policy.parameters()).device)


def chunk_normal(policy: TransformerPolicy, features: torch.Tensor) -> torch.distributions.Normal:
    """Return the policy's Gaussian over the chunk from its features (one Transformer pass)."""
    mean = policy.action_head(features)
    log_std = policy.log_std.clamp(policy.config.log_std_min, policy.config.log_std_max)
    return torch.distributions.Normal(mean, log_std.exp().expand_as(mean))


class ActorCritic(nn.Module):
    """The policy (actor, Gaussian head) and a value head on its features (critic)."""

    def __init__(self, policy: TransformerPolicy, hidden: int = 256) -> None:
        """Wrap a Gaussian-head policy and create the value head."""
        super().__init__()
        if policy.config.head != 'gaussian':
            raise ValueError('ActorCritic needs a gaussian-head policy; see gaussian_policy()')
        self.policy = policy
        config = policy.config
        self.value_keys = config.lowdim_keys
        width = config.decoder_width + sum(config.obs_spec[k][0] for k in self.value_keys)
        self.value_head = nn.Sequential(
            nn.Linear(width, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
            nn.Linear(hidden, 1))

    @property
    def config(self) -> PolicyConfig:
        """Return the policy's config."""
        return self.policy.config

    def actor_parameters(self) -> list:
        """Parameters of the policy (the BC weights)."""
        return list(self.policy.parameters())

    def critic_parameters(self) -> list:
        """Parameters of the value head."""
        return list(self.value_head.parameters())

    def forward(self, obs: Obs, obs_mask: torch.Tensor
                ) -> Tuple[torch.distributions.Normal, torch.Tensor, torch.Tensor]:
        """
        Return the chunk distribution (B, K, A), the value (B,) and the critic's input.

        The critic's input (B, C) is detached from the policy: it can be stored with a
        rollout and the value head trained on it without running the Transformer again.
        """
        features = self.policy.features(obs, obs_mask)
        current = [self.policy.normalizer.normalize(k, obs[k][:, -1]) for k in self.value_keys]
        critic_in = torch.cat([features.detach().mean(dim=1)] + current, dim=-1)
        return (chunk_normal(self.policy, features), self.value_head(critic_in).squeeze(-1),
                critic_in)


def load_actor_critic(checkpoint: str, init_log_std: Optional[float] = None,
                      device: str = 'cpu') -> Tuple[ActorCritic, TransformerPolicy,
                                                    Dict[str, Any]]:
    """Load a BC checkpoint as (actor-critic, frozen copy of the BC policy, its metadata)."""
    bc, metadata = load_checkpoint(checkpoint, device=device)
    reference = gaussian_policy(bc, init_log_std).eval()
    for parameter in reference.parameters():
        parameter.requires_grad_(False)
    agent = ActorCritic(gaussian_policy(bc, init_log_std)).to(device)
    return agent, reference, metadata
