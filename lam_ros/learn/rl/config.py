"""Hyper-parameters of RL fine-tuning: one dataclass, one docstring per field."""

from dataclasses import dataclass
import math
from typing import Optional

from lam_ros.policy import resolve_device

VALIDATION_SEED_START = 2_000_000
"""First env seed of the evaluations that pick best/ during RL (never the test seeds of
lam_ros.learn.evaluate, which start at 1_000_000, nor the demo seeds 0, 1, ...)."""
ROLLOUT_SEED_START = 10_000_000
"""Training rollouts draw their scenes from seeds counted up from here."""


@dataclass
class RLConfig:
    """PPO fine-tuning of a behaviour-cloned policy, kept close to the demonstrations."""

    total_env_steps: int = 300_000
    """Env steps (control periods, summed over all envs and ranks) of the whole run."""
    num_envs: int = 8
    """Parallel envs per rank, each in its own worker process (async) or in this one (sync)."""
    vector: str = 'async'
    """'async': one subprocess per env (gymnasium AsyncVectorEnv); 'sync': all in this one."""
    query_every: int = 10
    """Control steps between policy queries (PolicyRunner's query_every): one RL transition,
    one sampled chunk. The run uses the largest divisor of rollout_steps that is at most this
    and at most chunk_size (recorded as rl.query_every in the checkpoint; deploy with it)."""
    rollout_steps: int = 160
    """Control steps per env between two PPO updates."""
    epochs: int = 4
    """Passes of the actor over each rollout batch."""
    minibatch_size: int = 128
    """Samples per gradient step."""
    critic_epochs: int = 4
    """Passes of the value head over each whole rollout (cheap: it reads stored features)."""
    update_fraction: float = 1.0
    """Fraction (0, 1] of each rollout's samples an epoch trains on (a fresh random subset
    each epoch). Consecutive control steps are nearly alike, so a fraction keeps most of the
    signal for a fraction of the Transformer's cost."""
    lr: float = 2e-5
    """Adam learning rate of the policy (the BC weights; small, they are already good)."""
    critic_lr: float = 1e-3
    """Adam learning rate of the value head."""
    gamma: float = 0.99
    """Discount per control step."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    clip: float = 0.2
    """PPO ratio clip."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clip of every update."""
    target_kl: float = 0.03
    """Stop an update's epochs once the approximate KL to the rollout policy exceeds this
    (0 = never)."""
    entropy_coef: float = 0.0
    """Weight of the entropy bonus (mean over chunk dimensions)."""
    critic_warmup_updates: int = 5
    """First PPO updates that train only the value head; the policy does not move."""
    kl_coef: float = 0.2
    """Initial weight of KL(policy || frozen BC policy), summed over the chunk's dimensions."""
    bc_coef: float = 0.05
    """Initial weight of the BC loss on demonstration windows (needs demos)."""
    anneal_env_steps: int = 200_000
    """kl_coef and bc_coef fall linearly to their final values over this many env steps."""
    kl_coef_final: float = 0.05
    """kl_coef after annealing."""
    bc_coef_final: float = 0.01
    """bc_coef after annealing."""
    bc_batch_size: int = 32
    """Demonstration windows per gradient step of the BC term."""
    imitation_capacity: int = 200
    """Self-imitation: successful rollout episodes kept (the oldest dropped first) and
    cloned together with the demonstrations after every PPO update; 0 = off."""
    imitation_steps: int = 64
    """Gradient steps of the BC loss on demos + kept successes after every PPO update."""
    imitation_batch_size: int = 64
    """Windows per self-imitation gradient step."""
    imitation_lr: float = 3e-4
    """Adam learning rate of the self-imitation steps (the policy's weights, not log_std)."""
    lr_final_fraction: float = 1.0
    """The policy's learning rates (``lr``, ``imitation_lr``) fall linearly to this fraction
    of their values at ``total_env_steps`` (1 = constant); the value head's does not."""
    rollout_episode_steps: int = 0
    """Training rollouts end an episode (as failed) after this many control steps; 0 = the
    env's own limit. Evaluations always run to the env's limit."""
    replay_fraction: float = 0.75
    """Fraction [0, 1] of rollout episode starts that replay a scene (env seed) the policy
    failed in a rollout, newest failure first (replay.py); 0 = fresh scenes only."""
    replay_tries: int = 3
    """Replays of a failed scene at most (while it keeps failing)."""
    replay_capacity: int = 256
    """Failed scenes waiting for replay per rank, the oldest dropped first."""
    episode_noise_std: float = 0.2
    """Std (normalised action units) of a per-episode offset added to every sampled chunk of
    a replayed episode: attempts at the same scene differ as whole trajectories."""
    init_log_std: Optional[float] = -2.3
    """Exploration log-std (normalised action units) the run starts from; None keeps the
    checkpoint's (a regression checkpoint then gets -1). BC's maximum-likelihood std (about
    0.6) makes most sampled lift rollouts fail; 0.1 keeps them near the mean policy."""
    success_reward: float = 1.0
    """Reward on the step where info['is_success'] turns true (episodes end there)."""
    env_reward_scale: float = 0.0
    """Weight of the env's own (shaped) reward added to the success reward; 0 = sparse."""
    shaping_scale: float = 0.3
    """Weight of potential-based shaping with the env's reward as the potential:
    gamma * phi(s') - phi(s), phi = 0 at episode ends. It rewards progress when it happens
    and cannot change which policy is best (Ng et al. 1999); 0 = off."""
    ensemble_decay: float = 0.01
    """Temporal-ensembling decay, the same as PolicyRunner's on the robot."""
    eval_interval: int = 25_000
    """Env steps between evaluations (each may replace best/)."""
    eval_episodes: int = 50
    """Seeded episodes per evaluation, from VALIDATION_SEED_START."""
    seed: int = 0
    """Seed of rollouts, sampling and the value head's initialisation."""
    device: str = 'auto'
    """'auto', 'cpu', 'cuda' or 'cuda:N' for the networks (envs always run on CPU)."""
    num_threads: int = 0
    """torch CPU threads; 0 keeps torch's default."""
    progress: bool = True
    """Show a tqdm progress bar."""

    def __post_init__(self) -> None:
        """Validate every field, naming the one that is wrong."""
        for name in ('total_env_steps', 'num_envs', 'query_every', 'rollout_steps', 'epochs',
                     'critic_epochs',
                     'minibatch_size', 'anneal_env_steps', 'bc_batch_size', 'eval_interval',
                     'eval_episodes', 'imitation_steps', 'imitation_batch_size',
                     'replay_capacity'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f'RLConfig.{name} must be a positive int, got {value!r}')
        for name in ('critic_warmup_updates', 'seed', 'num_threads', 'imitation_capacity',
                     'replay_tries', 'rollout_episode_steps'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f'RLConfig.{name} must be an int >= 0, got {value!r}')
        for name in ('lr', 'critic_lr', 'clip', 'max_grad_norm', 'target_kl', 'entropy_coef',
                     'kl_coef', 'bc_coef', 'kl_coef_final', 'bc_coef_final', 'success_reward',
                     'env_reward_scale', 'shaping_scale', 'ensemble_decay', 'imitation_lr',
                     'episode_noise_std', 'replay_fraction', 'lr_final_fraction'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value) or value < 0:
                raise ValueError(f'RLConfig.{name} must be a finite number >= 0, got '
                                 f'{value!r}')
        if not 0.0 <= self.lr_final_fraction <= 1.0:
            raise ValueError(f'RLConfig.lr_final_fraction must be in [0, 1], got '
                             f'{self.lr_final_fraction!r}')
        if not 0.0 <= self.replay_fraction <= 1.0:
            raise ValueError(f'RLConfig.replay_fraction must be in [0, 1], got '
                             f'{self.replay_fraction}')
        if not 0.0 < self.update_fraction <= 1.0:
            raise ValueError(f'RLConfig.update_fraction must be in (0, 1], got '
                             f'{self.update_fraction}')
        if self.lr <= 0 or self.critic_lr <= 0 or self.imitation_lr <= 0:
            raise ValueError('RLConfig.lr, critic_lr and imitation_lr must be > 0')
        for name in ('gamma', 'gae_lambda'):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f'RLConfig.{name} must be in [0, 1], got '
                                 f'{getattr(self, name)}')
        if self.vector not in ('async', 'sync'):
            raise ValueError(f"RLConfig.vector must be 'async' or 'sync', got {self.vector!r}")
        if self.init_log_std is not None and not -5.0 <= self.init_log_std <= 2.0:
            raise ValueError(f'RLConfig.init_log_std must be in [-5, 2] or None, got '
                             f'{self.init_log_std}')
        resolve_device(self.device)

    def query_period(self, chunk_size: int) -> int:
        """Return the query period used with a policy of this chunk_size (see query_every)."""
        limit = min(self.query_every, chunk_size)
        return max(k for k in range(1, limit + 1) if self.rollout_steps % k == 0)

    def lr_scale(self, env_steps: int) -> float:
        """Return the factor on the policy's learning rates at env_steps (lr_final_fraction)."""
        progress = min(1.0, max(0, env_steps) / self.total_env_steps)
        return 1.0 - (1.0 - self.lr_final_fraction) * progress

    def coefficient(self, start: float, final: float, env_steps: int) -> float:
        """Linearly annealed weight at env_steps: start at 0, final after anneal_env_steps."""
        progress = min(1.0, max(0, env_steps) / self.anneal_env_steps)
        return start + (final - start) * progress
