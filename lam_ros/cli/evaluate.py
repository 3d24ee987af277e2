"""``lam-ros eval``: roll a trained policy out in the PyBullet task and report its success rate."""

import argparse
import json
import os
import sys
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``eval`` sub-command."""
    from lam_ros.description import TASK_NAMES
    from lam_ros.learn.evaluate import EVAL_SEED_START
    parser = subparsers.add_parser(
        'eval', help='evaluate a checkpoint by rollouts in PyBullet',
        description='Run seeded episodes of a task with the policy in the loop (the same '
                    'history, chunking and temporal ensembling as the inference node) and '
                    'print the success rate with its 95 %% Wilson interval.')
    parser.add_argument('--checkpoint', required=True, metavar='DIR',
                        help='checkpoint directory (e.g. RUN_DIR/best)')
    parser.add_argument('--task', default='', choices=('',) + TASK_NAMES, metavar='TASK',
                        help=f'one of {", ".join(TASK_NAMES)} (default: the task stored in the '
                             'checkpoint)')
    parser.add_argument('--env', default='', metavar='MODULE:FACTORY',
                        help='a gymnasium env factory following docs/env_contract.md instead '
                             'of the lam_ros task')
    parser.add_argument('--episodes', type=int, default=100, help='episodes (default: 100)')
    parser.add_argument('--seed', type=int, default=EVAL_SEED_START,
                        help=f'env seed of the first episode; episode i uses seed + i (default: '
                             f'{EVAL_SEED_START}, far from the demo seeds 0, 1, ...)')
    parser.add_argument('--query-every', type=int, default=1, metavar='N',
                        help='run the policy every N control steps (default: 1)')
    parser.add_argument('--ensemble-decay', type=float, default=0.01,
                        help='temporal-ensembling weight decay; 0 = plain mean (default: 0.01)')
    parser.add_argument('--device', default='cpu', help="'cpu', 'cuda' or 'auto' (default: cpu)")
    parser.add_argument('--gif', default='', metavar='PATH',
                        help='record the first episodes to this .gif (or .mp4 with imageio)')
    parser.add_argument('--video-episodes', type=int, default=2,
                        help='episodes recorded with --gif (default: 2)')
    parser.add_argument('--json', default='', metavar='PATH',
                        help='write the full results (per-episode records included) here')
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate; exit code 0 when every episode ran (whatever the success rate)."""
    from lam_ros.cli._progress import episode_progress
    from lam_ros.learn.evaluate import evaluate_policy
    from lam_ros.policy import CheckpointError, read_checkpoint_config
    try:
        document = read_checkpoint_config(args.checkpoint)
    except CheckpointError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    task = args.task or (document.get('metadata') or {}).get('task') or ''
    task = task or ('custom' if args.env else '')
    if not task:
        from lam_ros.description import TASK_NAMES
        print(f'error: the checkpoint does not name its task; pass --task with one of '
              f'{", ".join(TASK_NAMES)}', file=sys.stderr)
        return 2
    try:
        with episode_progress(args.episodes, f'eval {task}') as done:
            result = evaluate_policy(args.checkpoint, task, args.episodes, args.seed,
                                     args.query_every, args.ensemble_decay, args.device,
                                     video_path=args.gif or None,
                                     video_episodes=args.video_episodes,
                                     on_episode=lambda record: done(record['success']),
                                     env_factory=args.env or None)
    except (ValueError, CheckpointError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    low, high = result['success_ci95']
    tts = result['mean_time_to_success_s']
    print(f'{task}: success {100 * result["success_rate"]:.1f}% '
          f'({result["successes"]}/{result["episodes"]}, 95% CI {100 * low:.1f}-'
          f'{100 * high:.1f}%), mean return {result["mean_return"]:.1f}, mean time to success '
          f'{"n/a" if tts is None else f"{tts:.2f} s"}, policy call '
          f'{result["mean_policy_ms"]:.1f} ms')
    if result.get('video'):
        print(f'video: {result["video"]}')
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w', encoding='utf-8') as stream:
            json.dump(dict(result, checkpoint=os.path.abspath(args.checkpoint)), stream,
                      indent=2)
        print(f'results: {args.json}')
    return 0
