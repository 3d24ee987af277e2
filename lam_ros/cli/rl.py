"""``lam-ros rl``: fine-tune a behaviour-cloned policy by PPO in PyBullet or any contract env."""

import argparse
from dataclasses import fields
import sys
from typing import Any

# Flags for the RLConfig fields a user tunes; the rest keep their defaults.
_FLAGS = (
    ('--env-steps', 'total_env_steps', int, 'env steps in total'),
    ('--num-envs', 'num_envs', int, 'parallel envs, each in a worker process'),
    ('--vector', 'vector', str, "'async' (worker processes) or 'sync' (this process)"),
    ('--rollout-steps', 'rollout_steps', int, 'control steps per env between updates'),
    ('--epochs', 'epochs', int, 'passes over each rollout'),
    ('--minibatch-size', 'minibatch_size', int, 'samples per gradient step'),
    ('--lr', 'lr', float, 'policy learning rate'),
    ('--critic-lr', 'critic_lr', float, 'value-head learning rate'),
    ('--gamma', 'gamma', float, 'discount per control step'),
    ('--clip', 'clip', float, 'PPO ratio clip'),
    ('--critic-warmup', 'critic_warmup_updates', int, 'updates that train only the critic'),
    ('--kl-coef', 'kl_coef', float, 'initial weight of KL to the BC policy'),
    ('--bc-coef', 'bc_coef', float, 'initial weight of the BC loss on --demos'),
    ('--anneal-steps', 'anneal_env_steps', int, 'env steps over which both weights anneal'),
    ('--imitation-capacity', 'imitation_capacity', int,
     'successful rollout episodes cloned with the demos (self-imitation), 0 = off'),
    ('--imitation-steps', 'imitation_steps', int, 'self-imitation steps per update'),
    ('--imitation-lr', 'imitation_lr', float, 'self-imitation learning rate'),
    ('--replay-fraction', 'replay_fraction', float,
     'fraction of rollout episodes that replay a failed scene, 0 = off'),
    ('--replay-tries', 'replay_tries', int, 'replays of a failed scene at most'),
    ('--episode-noise', 'episode_noise_std', float,
     'per-episode action offset std on replayed scenes (normalised units)'),
    ('--rollout-episode-steps', 'rollout_episode_steps', int,
     "rollout episodes end after this many steps, 0 = the env's limit"),
    ('--init-log-std', 'init_log_std', float, 'exploration log-std (normalised units)'),
    ('--env-reward-scale', 'env_reward_scale', float, "weight of the env's shaped reward"),
    ('--shaping-scale', 'shaping_scale', float, 'potential-based shaping with the env reward'),
    ('--eval-interval', 'eval_interval', int, 'env steps between evaluations'),
    ('--eval-episodes', 'eval_episodes', int, 'episodes per evaluation'),
    ('--seed', 'seed', int, 'seed'),
    ('--threads', 'num_threads', int, 'torch CPU threads, 0 = default'),
    ('--device', 'device', str, "'auto', 'cpu' or 'cuda'"),
)

COMMAND = 'rl'
HELP = 'fine-tune a BC checkpoint by reinforcement learning (PPO)'


def register(subparsers: Any) -> None:
    """Add the ``rl`` sub-command."""
    from lam_ros.learn.rl import RLConfig
    defaults = RLConfig()
    parser = subparsers.add_parser(
        COMMAND, help=HELP,
        description='Fine-tune the policy of a BC checkpoint by PPO, staying close to the '
                    'demonstrations (KL to the BC policy, BC loss on --demos). Writes '
                    'OUT/best (best evaluated), OUT/last (resume: run the same command '
                    'again; Ctrl-C saves it), metrics.csv and curves.png.')
    parser.add_argument('--checkpoint', required=True, metavar='DIR',
                        help='BC checkpoint directory (e.g. runs/bc_lift/best)')
    parser.add_argument('--out', required=True, metavar='RUN_DIR', help='run directory')
    parser.add_argument('--task', default='',
                        help="lift or pick_place (default: the checkpoint's task)")
    parser.add_argument('--env', default='', metavar='MODULE:FACTORY',
                        help='a gymnasium env factory following docs/env_contract.md, '
                             'e.g. my_pkg.envs:make_env (default: the lam_ros task)')
    parser.add_argument('--demos', default='', metavar='CACHE_OR_BAGS',
                        help='demonstrations for the BC term (default: none, KL term only)')
    for flag, key, kind, what in _FLAGS:
        parser.add_argument(flag, dest=key, type=kind, default=getattr(defaults, key),
                            help=f'{what} (default: %(default)s)')
    parser.add_argument('--no-progress', action='store_true',
                        help='hide the progress bar (default: shown)')
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Resolve the env, build the config and train; exit code 0 on success, 130 on Ctrl-C."""
    from lam_ros.learn.rl import env_factory, EnvSpecError, RLConfig, train_rl
    from lam_ros.policy import CheckpointError, read_checkpoint_config
    try:
        document = read_checkpoint_config(args.checkpoint)
        if args.env:
            env_factory(args.env)  # fail before anything is written
        config = RLConfig(**{f.name: getattr(args, f.name) for f in fields(RLConfig)
                             if hasattr(args, f.name)}, progress=not args.no_progress)
        demos = None
        if args.demos:
            from lam_ros.cli.train import load_dataset
            demos = load_dataset(args.demos, float(document['control_rate_hz']))
        result = train_rl(args.checkpoint, args.out, config, env=args.env or None,
                          task=args.task or None, demos=demos)
    except (ValueError, CheckpointError, EnvSpecError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    initial = 'n/a' if result.initial_success_rate is None \
        else f'{100 * result.initial_success_rate:.0f}%'
    print(f'{"interrupted" if result.interrupted else "done"}: {result.env_steps} env steps '
          f'({result.env_steps - result.resumed_from} this session, {result.wall_time_s:.0f} s, '
          f'{result.steps_per_s:.0f} steps/s), validation success {initial} (BC) -> best '
          f'{100 * result.best_success_rate:.0f}%\ncheckpoints: {result.best_checkpoint} '
          f'{result.last_checkpoint}\nmetrics: {result.metrics_csv} {result.curves_png}')
    return 130 if result.interrupted else 0
