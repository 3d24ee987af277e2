"""``lam-ros expert``: run the scripted expert on the simulated tasks and report success."""

import argparse
import json
import os
import sys
from typing import Any, Dict


def register(subparsers: Any) -> None:
    """Add the ``expert`` sub-command."""
    from lam_ros.description import TASK_NAMES
    from lam_ros.sim.expert import DEFAULT_NOISE_STD
    parser = subparsers.add_parser(
        'expert', help='run the scripted expert in PyBullet and print its success rate',
        description='Run the scripted expert for seeded episodes of each task.')
    parser.add_argument('--task', default='all', choices=list(TASK_NAMES) + ['all'],
                        help='task to run (default: all)')
    parser.add_argument('--episodes', type=int, default=100,
                        help='episodes per task (default: 100)')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the first episode; episode i uses seed + i (default: 0)')
    parser.add_argument('--noise', type=float, default=DEFAULT_NOISE_STD,
                        help=f'demonstration noise std in m (default: {DEFAULT_NOISE_STD})')
    parser.add_argument('--robot', default='', metavar='NAME_OR_YAML',
                        help='robot description: a name in config/robots/ (panda, xarm6) or a '
                             'YAML path (default: panda)')
    parser.add_argument('--json', default='', metavar='PATH',
                        help='also write the results to this JSON file')
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate the expert per task; exit code 0 when every episode ran."""
    from lam_ros.cli._progress import episode_progress
    from lam_ros.description import TASK_NAMES
    from lam_ros.sim.expert import evaluate_expert
    if args.episodes < 1:
        print(f'--episodes must be >= 1, got {args.episodes}', file=sys.stderr)
        return 2
    if not args.noise >= 0:
        print(f'--noise must be >= 0 (m), got {args.noise}', file=sys.stderr)
        return 2
    from lam_ros.description import load_robot
    try:
        load_robot(args.robot or None)
    except (FileNotFoundError, ValueError) as err:
        print(f'--robot: {err}', file=sys.stderr)
        return 2
    tasks = list(TASK_NAMES) if args.task == 'all' else [args.task]
    results: Dict[str, Dict] = {}
    for task in tasks:
        with episode_progress(args.episodes, f'expert {task}') as done:
            results[task] = evaluate_expert(task, args.episodes, args.seed, args.noise,
                                            on_episode=lambda _index, ok: done(ok),
                                            robot=args.robot)
    for task, res in results.items():
        steps = res['mean_steps_success']
        steps_txt = f'{steps:.1f}' if steps is not None else 'n/a'
        print(f'{task}: success {res["success_rate"] * 100:.1f}% '
              f'({res["successes"]}/{res["episodes"]}), mean steps to success {steps_txt}, '
              f'mean return {res["mean_return"]:.1f}')
    if args.json:
        directory = os.path.dirname(os.path.abspath(args.json))
        os.makedirs(directory, exist_ok=True)
        with open(args.json, 'w', encoding='utf-8') as stream:
            json.dump(results, stream, indent=2)
    return 0
