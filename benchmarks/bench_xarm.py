"""
Benchmark the second arm, the xArm 6, through the same contract as the Panda.

Three stages, each through the ``lam-ros`` command or the library call behind it:

1. the scripted expert on ``lift`` for 100 seeded episodes (goal >= 95 %);
2. 50 noisy expert demonstrations recorded as bags (``lam-ros demos --robot xarm6``);
3. behaviour cloning with ``lam-ros train``'s defaults, evaluated on 100 unseen seeds
   (evaluation seeds start at 1_000_000; goal >= 90 %).

Run under the shared CPU lock::

    flock /tmp/lam_ros_cpu.lock python benchmarks/bench_xarm.py --json bench_xarm.json

``--robot`` benchmarks another description the same way. Any further flag goes to
``lam-ros train`` unchanged (e.g. ``--steps 2000``).
"""

import argparse
import json
import os
import shutil
import sys
import time
from typing import Any, Dict, List

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lam_ros.cli import main as lam_ros  # noqa: E402
from lam_ros.cli.train import load_dataset  # noqa: E402
from lam_ros.learn.evaluate import EVAL_SEED_START, evaluate_policy  # noqa: E402
from lam_ros.policy import read_checkpoint_config  # noqa: E402
from lam_ros.sim.expert import evaluate_expert  # noqa: E402

EXPERT_GOAL = 0.95
BC_GOAL = 0.90


def parse() -> tuple:
    """Return (benchmark args, extra flags for lam-ros train)."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--robot', default='xarm6', help='robot description (default: xarm6)')
    parser.add_argument('--task', default='lift', choices=('lift', 'pick_place'))
    parser.add_argument('--expert-episodes', type=int, default=100)
    parser.add_argument('--demos', type=int, default=50, help='demonstrations (default: 50)')
    parser.add_argument('--noise', type=float, default=0.005,
                        help='expert noise std of the demonstrations in m (default: 0.005)')
    parser.add_argument('--episodes', type=int, default=100,
                        help='BC evaluation episodes (default: 100)')
    parser.add_argument('--threads', type=int, default=2, help='torch threads (default: 2)')
    parser.add_argument('--work', default=os.path.join(os.path.expanduser('~'), '.cache',
                                                       'lam_ros', 'bench_xarm'),
                        help='where demos and runs are kept')
    parser.add_argument('--json', default='bench_xarm.json', help='result file')
    return parser.parse_known_args()


def main() -> int:
    """Run the three stages, print a summary and write the JSON report."""
    args, train_flags = parse()
    start = time.monotonic()
    expert = evaluate_expert(args.task, args.expert_episodes, seed=0, robot=args.robot)
    expert_s = time.monotonic() - start
    demos_dir = os.path.join(args.work, f'demos_{args.robot}_{args.task}_{args.demos}')
    run_dir = os.path.join(args.work, f'run_{args.robot}_{args.task}_{args.demos}')
    shutil.rmtree(demos_dir, ignore_errors=True)
    shutil.rmtree(run_dir, ignore_errors=True)
    demo_cmd = ['demos', '--robot', args.robot, '--task', args.task, '--episodes',
                str(args.demos), '--seed', '0', '--noise', str(args.noise), '--output',
                demos_dir]
    start = time.monotonic()
    if lam_ros(demo_cmd) != 0:
        raise SystemExit(f'lam-ros {" ".join(demo_cmd)} failed')
    demo_s = time.monotonic() - start
    dataset = load_dataset(demos_dir)
    train_cmd: List[str] = ['train', '--dataset', demos_dir, '--out', run_dir, '--threads',
                            str(args.threads), '--no-progress'] + train_flags
    start = time.monotonic()
    if lam_ros(train_cmd) != 0:
        raise SystemExit(f'lam-ros {" ".join(train_cmd)} failed')
    train_s = time.monotonic() - start
    best = os.path.join(run_dir, 'best')
    document = read_checkpoint_config(best)
    start = time.monotonic()
    result = evaluate_policy(best, args.task, args.episodes, EVAL_SEED_START)
    eval_s = time.monotonic() - start
    report: Dict[str, Any] = {
        'robot': args.robot, 'task': args.task,
        'expert': {k: expert[k] for k in ('episodes', 'success_rate', 'successes',
                                          'mean_steps', 'failed_seeds')},
        'expert_seeds': [0, args.expert_episodes - 1], 'expert_wall_time_s': expert_s,
        'expert_goal': EXPERT_GOAL, 'expert_meets_goal': expert['success_rate'] >= EXPERT_GOAL,
        'demo_command': 'lam-ros ' + ' '.join(demo_cmd), 'demo_wall_time_s': demo_s,
        'demo_successes': sum(bool(ep.success) for ep in dataset.episodes),
        'action_dim': len(dataset.joint_names), 'joint_names': list(dataset.joint_names),
        'dataset_steps': dataset.num_steps,
        'train_command': 'lam-ros ' + ' '.join(train_cmd), 'train_wall_time_s': train_s,
        'train_steps': document['metadata'].get('step'),
        'observations': sorted(document['obs_spec']),
        'bc_success_rate': result['success_rate'], 'bc_success_ci95': result['success_ci95'],
        'bc_successes': result['successes'], 'bc_episodes': result['episodes'],
        'bc_eval_seeds': [EVAL_SEED_START, EVAL_SEED_START + args.episodes - 1],
        'bc_eval_wall_time_s': eval_s, 'bc_goal': BC_GOAL,
        'bc_meets_goal': result['success_rate'] >= BC_GOAL,
        'bc_failed_seeds': [r['seed'] for r in result['records'] if not r['success']],
        'torch_threads': args.threads,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, 'w', encoding='utf-8') as stream:
        json.dump(report, stream, indent=2)
    print(f'\n{args.robot} {args.task}: expert {100 * expert["success_rate"]:.0f}% '
          f'({expert["successes"]}/{args.expert_episodes}), BC from {args.demos} demos '
          f'{100 * result["success_rate"]:.0f}% ({result["successes"]}/{args.episodes} unseen '
          f'seeds), training {train_s:.0f} s\nreport: {args.json}')
    return 0 if report['expert_meets_goal'] and report['bc_meets_goal'] else 1


if __name__ == '__main__':
    sys.exit(main())
