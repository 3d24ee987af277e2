"""
Benchmark RL fine-tuning: scripted demos -> BC (Gaussian head) -> PPO -> 100 unseen episodes.

Cases (the RL bar)::

    python benchmarks/bench_rl.py --case lift_weak    # 10 demos: weak BC -> >= 95 % in 300 k steps
    python benchmarks/bench_rl.py --case pick_place   # 50 demos -> >= 97 % in 300 k steps
    python benchmarks/bench_rl.py --case lift_strong  # 50 demos: RL must not make it worse
    python benchmarks/bench_rl.py --case scaling      # env steps/s with 1 and 2 worker processes

Each case records demos with ``lam-ros demos`` (seeds 0..N-1, noise 0.005 m), trains BC with
``lam-ros train --head gaussian``, evaluates the BC best/ and the RL best/ with
lam_ros.learn.evaluate on the same 100 unseen seeded episodes (from EVAL_SEED_START; RL picks
its best/ on other seeds, from VALIDATION_SEED_START) and writes the JSON report plus the
success-vs-env-steps curve PNG next to it. RL runs with RLConfig's defaults plus the case's
settings (CASES[...]['rl']), then --rl's overrides. Demos, BC runs and RL runs are kept under
--work and
reused; an RL run that was interrupted resumes. Run it under the shared CPU lock:
``flock /tmp/lam_ros_cpu.lock python benchmarks/bench_rl.py ...``.
"""

import argparse
from dataclasses import asdict
import json
import os
import shutil
import sys
import time
from typing import Any, Dict

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lam_ros.cli import main as lam_ros  # noqa: E402
from lam_ros.cli.train import load_dataset  # noqa: E402
from lam_ros.learn.evaluate import EVAL_SEED_START, evaluate_policy  # noqa: E402
from lam_ros.learn.rl import RLConfig, train_rl  # noqa: E402
from lam_ros.policy import read_checkpoint_config  # noqa: E402

# 'rl': RLConfig values of the case (--rl overrides them). Lift successes take 50-65 control
# steps and a failed grasp never recovers, so lift rollouts end failures at 100 steps. The
# weak policy updates after every 80 steps of its 16 workers instead of 160: twice the
# updates (and self-imitation steps) per env step (docs/rl.md, "Figures").
CASES = {
    'lift_weak': {'task': 'lift', 'demos': 10, 'goal': 0.95,
                  'rl': {'rollout_episode_steps': 100, 'eval_interval': 12_800,
                         'eval_episodes': 100, 'rollout_steps': 80}},
    'lift_strong': {'task': 'lift', 'demos': 50, 'goal': None,
                    'rl': {'rollout_episode_steps': 100, 'eval_interval': 12_800,
                           'eval_episodes': 100}},
    'pick_place': {'task': 'pick_place', 'demos': 50, 'goal': 0.97, 'rl': {}},
    # The weak case with 3 of the 10 demos missing their first grasp and recovering: whole
    # episodes in the rollouts, since a recovery takes 90-110 steps.
    'lift_weak_recovery': {'task': 'lift', 'demos': 10, 'goal': 0.95, 'miss_fraction': 0.3,
                           'rl': {'eval_interval': 12_800, 'eval_episodes': 100}},
}


def parse() -> argparse.Namespace:
    """Return the benchmark arguments."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--case', default='lift_weak', choices=sorted(CASES) + ['scaling'])
    parser.add_argument('--env-steps', type=int, default=300_000,
                        help='RL env steps (default: 300000, the bar)')
    parser.add_argument('--num-envs', type=int, default=16, help='RL worker processes')
    parser.add_argument('--episodes', type=int, default=100, help='test episodes (default 100)')
    parser.add_argument('--bc-steps', type=int, default=2000, help='BC steps (default 2000)')
    parser.add_argument('--threads', type=int, default=1, help='torch threads (default: 1)')
    parser.add_argument('--rl', default='', metavar='K=V,...',
                        help='RLConfig overrides, e.g. lr=1e-4,kl_coef=0.2')
    parser.add_argument('--work', default=os.path.join(os.path.expanduser('~'), '.cache',
                                                       'lam_ros', 'bench_rl'))
    parser.add_argument('--miss-fraction', type=float, default=None, metavar='F',
                        help='fraction of the demos that recover from a missed first grasp '
                             "(default: the case's)")
    parser.add_argument('--tag', default='', help='suffix of the RL run directory (variants)')
    parser.add_argument('--json', default='', help='result file (default: bench_rl_CASE.json)')
    return parser.parse_args()


def overrides(text: str) -> Dict[str, Any]:
    """Parse 'key=value,...' into RLConfig field values (numbers where they parse)."""
    out: Dict[str, Any] = {}
    for item in filter(None, text.split(',')):
        key, value = item.split('=', 1)
        try:
            out[key] = int(value)
        except ValueError:
            try:
                out[key] = float(value)
            except ValueError:
                out[key] = value
    return out


def prepare_bc(args: argparse.Namespace, task: str, demos: int,
               miss_fraction: float = 0.0) -> Dict[str, Any]:
    """Record demos and train the Gaussian-head BC policy unless they exist; return paths."""
    name = f'{task}_{demos}' + (f'_miss{miss_fraction:g}' if miss_fraction else '')
    demo_dir = os.path.join(args.work, f'demos_{name}')
    run_dir = os.path.join(args.work, f'bc_{name}')
    info: Dict[str, Any] = {'demos': demos, 'demo_dir': demo_dir, 'bc_run': run_dir,
                            'demo_miss_fraction': miss_fraction}
    if not os.path.isfile(os.path.join(demo_dir, 'dataset.yaml')):
        shutil.rmtree(demo_dir, ignore_errors=True)
        cmd = ['demos', '--task', task, '--episodes', str(demos), '--seed', '0', '--noise',
               '0.005', '--miss-fraction', str(miss_fraction), '--output', demo_dir]
        if lam_ros(cmd) != 0:
            raise SystemExit(f'lam-ros {" ".join(cmd)} failed')
    if not os.path.isdir(os.path.join(run_dir, 'best')):
        cmd = ['train', '--dataset', demo_dir, '--out', run_dir, '--head', 'gaussian',
               '--steps', str(args.bc_steps), '--threads', str(args.threads), '--no-progress']
        start = time.monotonic()
        if lam_ros(cmd) != 0:
            raise SystemExit(f'lam-ros {" ".join(cmd)} failed')
        info['bc_wall_time_s'] = time.monotonic() - start
    info['bc_command'] = 'lam-ros train --dataset DEMOS --head gaussian --steps ' \
        f'{args.bc_steps}'
    return info


def evaluate(checkpoint: str, task: str, episodes: int, query_every: int = 1) -> Dict[str, Any]:
    """Success on the unseen test episodes (lam-ros eval's library call)."""
    start = time.monotonic()
    result = evaluate_policy(checkpoint, task, episodes, EVAL_SEED_START,
                             query_every=query_every)
    keep = ('success_rate', 'successes', 'episodes', 'success_ci95', 'mean_return',
            'mean_time_to_success_s', 'query_every')
    return dict({k: result[k] for k in keep}, eval_wall_time_s=time.monotonic() - start,
                failed_seeds=[r['seed'] for r in result['records'] if not r['success']])


def run_case(args: argparse.Namespace) -> Dict[str, Any]:
    """Demos -> BC -> test eval -> RL -> test eval of RL's best/."""
    case = CASES[args.case]
    task = case['task']
    report: Dict[str, Any] = {'case': args.case, 'task': task, 'goal': case['goal']}
    miss = case.get('miss_fraction', 0.0) if args.miss_fraction is None else args.miss_fraction
    report.update(prepare_bc(args, task, case['demos'], miss))
    bc_best = os.path.join(report['bc_run'], 'best')
    base = {'total_env_steps': args.env_steps, 'num_envs': args.num_envs,
            'num_threads': args.threads, 'eval_interval': 25_000}
    base.update(case['rl'])
    base.update(overrides(args.rl))
    config = RLConfig(**base)
    # Whole updates only, so that the run never goes past the budget.
    per_update = config.num_envs * config.rollout_steps
    config.total_env_steps = args.env_steps // per_update * per_update
    k = config.query_period(read_checkpoint_config(bc_best)['policy_config']['chunk_size'])
    # BC as trained (queried every step) and on the schedule RL fine-tunes it for.
    report['bc_test'] = evaluate(bc_best, task, args.episodes)
    report['bc_test_same_schedule'] = evaluate(bc_best, task, args.episodes, k)
    print(f'BC ({case["demos"]} demos): {100 * report["bc_test"]["success_rate"]:.0f}% on '
          f'{args.episodes} test episodes (query every step), '
          f'{100 * report["bc_test_same_schedule"]["success_rate"]:.0f}% (every {k} steps)')
    rl_dir = os.path.join(args.work, f'rl_{args.case}{args.tag}')
    start = time.monotonic()
    result = train_rl(bc_best, rl_dir, config,
                      demos=load_dataset(report['demo_dir'], 20.0))
    report['rl'] = {'config': asdict(config), 'run_dir': rl_dir, 'env_steps': result.env_steps,
                    'resumed_from': result.resumed_from,
                    'wall_time_s_this_session': time.monotonic() - start,
                    'rollout_steps_per_s': result.steps_per_s,
                    'validation_initial': result.initial_success_rate,
                    'validation_best': result.best_success_rate,
                    'curve': _curve(result.metrics_csv)}
    report['rl_test'] = evaluate(result.best_checkpoint, task, args.episodes, k)
    rate = report['rl_test']['success_rate']
    goal = case['goal'] if case['goal'] is not None else max(
        report['bc_test']['success_rate'], report['bc_test_same_schedule']['success_rate'])
    report['meets_goal'] = rate >= goal
    report['curve_png'] = _copy_png(result.curves_png, args)
    print(f'RL: {100 * rate:.0f}% on the same test episodes after {result.env_steps} env '
          f'steps (goal {100 * goal:.0f}%)')
    return report


def _curve(metrics_csv: str) -> list:
    from lam_ros.learn.rl.run_state import read_rl_metrics
    rows = read_rl_metrics(metrics_csv)
    return [{'env_steps': r['env_steps'], 'validation_success_rate': r['eval_success_rate'],
             'elapsed_s': r['elapsed_s']} for r in rows if r['eval_success_rate'] is not None]


def _copy_png(png: str, args: argparse.Namespace) -> str:
    target = os.path.splitext(args.json)[0] + '.png'
    if png and os.path.isfile(png):
        shutil.copyfile(png, target)
        return target
    return ''


def run_scaling(args: argparse.Namespace) -> Dict[str, Any]:
    """Env steps/s while collecting RL rollouts with 1 and 2 worker processes."""
    info = prepare_bc(args, 'lift', 10)
    report: Dict[str, Any] = {'case': 'scaling', 'task': 'lift', 'runs': {}}
    for workers in (1, 2):
        out = os.path.join(args.work, f'scaling_{workers}')
        shutil.rmtree(out, ignore_errors=True)
        steps = 2048 * workers
        config = RLConfig(total_env_steps=steps, num_envs=workers, rollout_steps=256,
                          eval_interval=10 * steps, eval_episodes=1, num_threads=args.threads,
                          progress=False)
        start = time.monotonic()
        result = train_rl(os.path.join(info['bc_run'], 'best'), out, config)
        report['runs'][workers] = {'env_steps': result.env_steps,
                                   'rollout_steps_per_s': result.steps_per_s,
                                   'wall_time_s': time.monotonic() - start}
        print(f'{workers} worker(s): {result.steps_per_s:.0f} env steps/s in rollouts')
    one, two = (report['runs'][w]['rollout_steps_per_s'] for w in (1, 2))
    report['scaling_ratio'] = two / one
    report['cpu_count'] = os.cpu_count()
    return report


def main() -> int:
    """Run the chosen case and write the JSON report."""
    args = parse()
    args.json = args.json or f'bench_rl_{args.case}.json'
    os.makedirs(args.work, exist_ok=True)
    start = time.monotonic()
    report = run_scaling(args) if args.case == 'scaling' else run_case(args)
    report['wall_time_s'] = time.monotonic() - start
    report['command'] = 'python benchmarks/bench_rl.py ' + ' '.join(sys.argv[1:])
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, 'w', encoding='utf-8') as stream:
        json.dump(report, stream, indent=2)
    print(f'report: {args.json}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
