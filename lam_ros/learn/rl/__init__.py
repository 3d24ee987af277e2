"""
RL fine-tuning of a behaviour-cloned TransformerPolicy (PPO) in any task-contract env.

The public API::

    from lam_ros.learn.rl import RLConfig, train_rl
    result = train_rl('runs/bc_lift/best', 'runs/rl_lift', RLConfig(total_env_steps=300_000))
    result.best_checkpoint   # an ordinary lam_ros.policy checkpoint

``env_factory('package.module:factory')`` resolves the command-line form of a custom env;
docs/env_contract.md states what such an env must provide.
"""

from lam_ros.learn.rl.config import RLConfig, ROLLOUT_SEED_START, VALIDATION_SEED_START
from lam_ros.learn.rl.envs import env_factory, EnvSpecError, make_vector_env, task_factory
from lam_ros.learn.rl.ppo import RLResult, train_rl

__all__ = ['EnvSpecError', 'RLConfig', 'RLResult', 'ROLLOUT_SEED_START',
           'VALIDATION_SEED_START', 'env_factory', 'make_vector_env', 'task_factory', 'train_rl']
