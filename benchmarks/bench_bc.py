"""
Benchmark behaviour cloning end to end: demos -> bags -> dataset -> BC -> PyBullet rollouts.

Run (the learning bar: lift, state observations, 50 noisy scripted demos (expert noise
0.005 m), 100 unseen evaluation episodes, goal >= 95 % success and <= 10 min of training on
2 CPU cores)::

    python benchmarks/bench_bc.py --json bench_bc_lift.json

Variants: ``--task pick_place`` (goal >= 90 %), ``--head gaussian``, ``--image`` (camera rgb
instead of the object pose). Any further flag goes to ``lam-ros train`` unchanged (e.g.
``--steps 2000``), so the defaults measured here are exactly the CLI's. Every stage runs
through the ``lam-ros`` command (demos, train) or the library call behind ``lam-ros eval``.
Demonstrations use seeds 0..N-1; evaluation seeds start at 1_000_000.
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
from lam_ros.data.bags.reader import read_dataset_yaml  # noqa: E402
from lam_ros.learn.evaluate import EVAL_SEED_START, evaluate_policy  # noqa: E402
from lam_ros.policy import read_checkpoint_config  # noqa: E402

GOALS = {'lift': 0.95, 'pick_place': 0.90}
TRAIN_TIME_GOAL_S = 600.0
IMAGE_OBS = 'joint_pos,joint_vel,gripper_width,rgb'


def parse() -> tuple:
    """Return (benchmark args, extra flags for lam-ros train)."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--task', default='lift', choices=sorted(GOALS))
    parser.add_argument('--head', default='regression', choices=('regression', 'gaussian'))
    parser.add_argument('--image', action='store_true',
                        help=f'observe the camera instead of the object pose ({IMAGE_OBS})')
    parser.add_argument('--camera-size', type=int, default=64,
                        help='square camera image size with --image (default: 64)')
    parser.add_argument('--demos', type=int, default=50, help='demonstrations (default: 50)')
    parser.add_argument('--noise', type=float, default=0.005,
                        help='expert noise std in m (default: 0.005)')
    parser.add_argument('--episodes', type=int, default=100,
                        help='evaluation episodes (default: 100)')
    parser.add_argument('--query-every', type=int, default=1)
    parser.add_argument('--ensemble-decay', type=float, default=0.01)
    parser.add_argument('--threads', type=int, default=2, help='torch threads (default: 2)')
    parser.add_argument('--work', default=os.path.join(os.path.expanduser('~'), '.cache',
                                                       'lam_ros', 'bench_bc'),
                        help='where demos and runs are kept (default: ~/.cache/lam_ros/bench_bc)')
    parser.add_argument('--json', default='bench_bc.json', help='result file')
    return parser.parse_known_args()


def record_demos(args: argparse.Namespace, directory: str) -> Dict[str, Any]:
    """Run lam-ros demos unless directory already holds the same complete demos."""
    index = read_dataset_yaml(directory) if os.path.isdir(directory) else None
    if index and sum(e.get('status') == 'complete' for e in index['episodes']) == args.demos:
        return {'reused': True, 'demo_time_s': None}
    shutil.rmtree(directory, ignore_errors=True)
    cmd = ['demos', '--task', args.task, '--episodes', str(args.demos), '--seed', '0',
           '--noise', str(args.noise), '--output', directory]
    if args.image:
        cmd += ['--camera', '--camera-size', str(args.camera_size), str(args.camera_size)]
    start = time.monotonic()
    if lam_ros(cmd) != 0:
        raise SystemExit(f'lam-ros {" ".join(cmd)} failed')
    return {'reused': False, 'demo_time_s': time.monotonic() - start}


def main() -> int:
    """Run the stages, print a summary and write the JSON report."""
    args, train_flags = parse()
    name = f'{args.task}_{"image" if args.image else "state"}_{args.demos}_{args.noise}'
    demos_dir = os.path.join(args.work, f'demos_{name}')
    run_dir = os.path.join(args.work, f'run_{name}_{args.head}')
    demos = record_demos(args, demos_dir)
    start = time.monotonic()
    dataset = load_dataset(demos_dir)  # at the control rate the demos recorded
    build_s = time.monotonic() - start
    demo_successes = sum(bool(ep.success) for ep in dataset.episodes)
    shutil.rmtree(run_dir, ignore_errors=True)
    train_cmd: List[str] = ['train', '--dataset', demos_dir, '--out', run_dir, '--head',
                            args.head, '--threads', str(args.threads)]
    if args.image:
        train_cmd += ['--obs', IMAGE_OBS]
    train_cmd += train_flags
    start = time.monotonic()
    if lam_ros(train_cmd) != 0:
        raise SystemExit(f'lam-ros {" ".join(train_cmd)} failed')
    train_s = time.monotonic() - start
    best = os.path.join(run_dir, 'best')
    document = read_checkpoint_config(best)
    start = time.monotonic()
    result = evaluate_policy(best, args.task, args.episodes, EVAL_SEED_START,
                             args.query_every, args.ensemble_decay)
    eval_s = time.monotonic() - start
    goal = GOALS[args.task]
    low, high = result['success_ci95']
    report = {
        'task': args.task, 'head': args.head,
        'observations': sorted(document['obs_spec']),
        'demos': args.demos, 'demo_noise_m': args.noise, 'demo_successes': demo_successes,
        'dataset_steps': dataset.num_steps, 'dataset_build_s': build_s, **demos,
        'train_command': 'lam-ros ' + ' '.join(train_cmd), 'train_wall_time_s': train_s,
        'train_steps': document['metadata'].get('step'),
        'best_val_loss': document['metadata'].get('best_val_loss'),
        'num_parameters': document['num_parameters'],
        'policy_config': document['policy_config'], 'torch_threads': args.threads,
        'success_rate': result['success_rate'], 'success_ci95': [low, high],
        'successes': result['successes'], 'episodes': result['episodes'],
        'mean_return': result['mean_return'],
        'mean_time_to_success_s': result['mean_time_to_success_s'],
        'mean_policy_ms': result['mean_policy_ms'], 'eval_wall_time_s': eval_s,
        'eval_seeds': [EVAL_SEED_START, EVAL_SEED_START + args.episodes - 1],
        'goal_success_rate': goal, 'goal_train_time_s': TRAIN_TIME_GOAL_S,
        'meets_success_goal': result['success_rate'] >= goal,
        'meets_time_goal': train_s <= TRAIN_TIME_GOAL_S,
        'failed_seeds': [r['seed'] for r in result['records'] if not r['success']],
        'run_dir': run_dir, 'records': result['records'],
    }
    out_dir = os.path.dirname(os.path.abspath(args.json))
    os.makedirs(out_dir, exist_ok=True)
    png = os.path.splitext(os.path.abspath(args.json))[0] + '_curves.png'
    shutil.copyfile(os.path.join(run_dir, 'curves.png'), png)
    report['curves_png'] = png
    with open(args.json, 'w', encoding='utf-8') as stream:
        json.dump(report, stream, indent=2)
    tts = result['mean_time_to_success_s']
    print(f'\n{args.task} ({args.head} head, {"image" if args.image else "state"}): success '
          f'{100 * result["success_rate"]:.1f}% ({result["successes"]}/{args.episodes}, 95% CI '
          f'{100 * low:.1f}-{100 * high:.1f}%), goal >= {100 * goal:.0f}%: '
          f'{"met" if report["meets_success_goal"] else "NOT met"}\n'
          f'training {train_s:.0f} s ({args.threads} threads), goal <= {TRAIN_TIME_GOAL_S:.0f} '
          f's: {"met" if report["meets_time_goal"] else "NOT met"}; '
          f'{document["num_parameters"]} parameters\n'
          f'mean time to success {"n/a" if tts is None else f"{tts:.2f} s"}, policy call '
          f'{result["mean_policy_ms"]:.1f} ms, demos {demo_successes}/{args.demos} '
          f'successful\nreport: {args.json}, curves: {png}')
    return 0 if report['meets_success_goal'] and report['meets_time_goal'] else 1


if __name__ == '__main__':
    sys.exit(main())
