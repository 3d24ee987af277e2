"""The pieces of the PPO objective, each small enough to check by hand (see the tests)."""

from typing import Tuple

import torch


def gae(rewards: torch.Tensor, values: torch.Tensor, dones: torch.Tensor,
        last_value: torch.Tensor, gamma: float, lam: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """
    Generalised advantage estimation over a (T, N) rollout; return (advantages, returns).

    dones[t] is 1 where the episode ended at step t (success, failure or time limit): no
    value is bootstrapped across it. last_value (N,) is the value of the observation after
    the last step.
    """
    steps = rewards.shape[0]
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(last_value)
    for t in reversed(range(steps)):
        next_value = last_value if t == steps - 1 else values[t + 1]
        alive = 1.0 - dones[t]
        delta = rewards[t] + gamma * next_value * alive - values[t]
        running = delta + gamma * lam * alive * running
        advantages[t] = running
    return advantages, advantages + values


def clipped_surrogate(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor,
                      clip: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """Return PPO's clipped objective as a loss to minimise and the fraction clipped."""
    ratio = (logp - old_logp).exp()
    unclipped = ratio * advantages
    clipped = ratio.clamp(1.0 - clip, 1.0 + clip) * advantages
    loss = -torch.min(unclipped, clipped).mean()
    clip_fraction = ((ratio - 1.0).abs() > clip).float().mean()
    return loss, clip_fraction.detach()


def gaussian_kl(p: torch.distributions.Normal, q: torch.distributions.Normal) -> torch.Tensor:
    """
    KL(p || q) of diagonal Gaussians, summed over every dimension but the batch: (B,).

    Summed like the chunk's log-probability, so the penalty and the PPO ratio share a scale.
    """
    var_p, var_q = p.scale.pow(2), q.scale.pow(2)
    kl = (q.scale.log() - p.scale.log()
          + (var_p + (p.loc - q.loc).pow(2)) / (2.0 * var_q) - 0.5)
    return kl.flatten(1).sum(dim=1)


def value_loss(values: torch.Tensor, returns: torch.Tensor) -> torch.Tensor:
    """Half the mean squared error of the value predictions."""
    return 0.5 * (values - returns).pow(2).mean()


def approx_kl(logp: torch.Tensor, old_logp: torch.Tensor) -> torch.Tensor:
    """Estimate KL(old || new) from samples of the old policy (Schulman's k3)."""
    log_ratio = logp - old_logp
    return ((log_ratio.exp() - 1.0) - log_ratio).mean()
