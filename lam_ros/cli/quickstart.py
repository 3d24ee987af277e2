"""
``lam-ros quickstart``: the whole loop on the embedded PyBullet Panda, in one command.

1. the scripted expert performs every task (its success rate per task);
2. it records noisy demonstrations of one task as rosbag2 (MCAP) episodes;
3. the bags become a training dataset;
4. a Transformer policy learns the task by behaviour cloning;
5. the policy is evaluated in PyBullet on seeded episodes it never saw.

Each step is a ``lam-ros`` sub-command, printed before it runs, so any step can be rerun or
changed by hand. Training resumes if the command is interrupted and run again.
"""

import argparse
import os
import shlex
from typing import Any, List


def register(subparsers: Any) -> None:
    """Add the ``quickstart`` sub-command."""
    from lam_ros.description import TASK_NAMES
    parser = subparsers.add_parser(
        'quickstart', help='expert -> demos -> dataset -> behaviour cloning -> evaluation',
        description=__doc__.split('\n\n')[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--task', default='lift', choices=TASK_NAMES,
                        help='task to learn (default: %(default)s)')
    parser.add_argument('--out', default='runs/quickstart', metavar='DIR',
                        help='where demos, dataset, checkpoints and results go '
                             '(default: %(default)s)')
    parser.add_argument('--expert-episodes', type=int, default=20,
                        help='expert episodes per task in step 1 (default: %(default)s)')
    parser.add_argument('--demos', type=int, default=50,
                        help='demonstrations recorded in step 2 (default: %(default)s)')
    parser.add_argument('--eval-episodes', type=int, default=50,
                        help='evaluation episodes in step 5 (default: %(default)s)')
    parser.add_argument('--steps', type=int, default=0,
                        help="training steps (default: lam-ros train's default)")
    parser.set_defaults(func=run)


def _step(title: str, argv: List[str]) -> None:
    from lam_ros.cli import main
    print(f'\n== {title}\n$ lam-ros {shlex.join(argv)}', flush=True)
    code = main(argv)
    if code != 0:
        raise SystemExit(f'quickstart stopped: `lam-ros {shlex.join(argv)}` exited with {code}')


def run(args: argparse.Namespace) -> int:
    """Run the five steps; stop at the first that fails."""
    for name in ('expert_episodes', 'demos', 'eval_episodes'):
        if getattr(args, name) < 1:
            raise SystemExit(f'--{name.replace("_", "-")} must be >= 1')
    out = args.out
    demos = os.path.join(out, f'demos_{args.task}')
    dataset = os.path.join(out, f'dataset_{args.task}.safetensors')
    run_dir = os.path.join(out, f'bc_{args.task}')
    _step('1/5 scripted expert on every task',
          ['expert', '--task', 'all', '--episodes', str(args.expert_episodes),
           '--json', os.path.join(out, 'expert.json')])
    if os.path.isfile(os.path.join(demos, 'dataset.yaml')):
        print(f'\n== 2/5 demonstrations: reusing {demos} (delete it to record anew)')
    else:
        _step('2/5 record demonstrations as rosbag2 episodes',
              ['demos', '--task', args.task, '--episodes', str(args.demos), '--output', demos])
    _step('3/5 build the training dataset from the bags',
          ['dataset', 'build', demos, '--out', dataset])
    train = ['train', '--dataset', dataset, '--out', run_dir, '--task', args.task]
    if args.steps:
        train += ['--steps', str(args.steps)]
    _step('4/5 behaviour cloning', train)
    _step('5/5 evaluation on unseen seeds',
          ['eval', '--checkpoint', os.path.join(run_dir, 'best'), '--task', args.task,
           '--episodes', str(args.eval_episodes),
           '--json', os.path.join(out, f'eval_{args.task}.json')])
    print(f'\nquickstart done: everything is in {out}/ (curves: {run_dir}/curves.png)')
    return 0
