"""
Benchmark the simulated tasks: env throughput against raw PyBullet, and expert success.

Run: ``python benchmarks/bench_sim.py --out bench_sim.json [--episodes 100]``.
The ratio is env physics steps per second divided by raw ``stepSimulation`` calls per
second on the same scene in the same run (goal >= 0.8). With a camera, the raw loop also
renders the same camera image once per control step with ``getCameraImage``, so the ratio
measures the env's own overhead rather than the cost of rendering.
"""

import argparse
import json
import os
import sys
import time
from typing import Dict

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lam_ros.sim import make_env, TASK_NAMES  # noqa: E402
from lam_ros.sim.expert import DEFAULT_NOISE_STD, evaluate_expert  # noqa: E402
from lam_ros.sim.robot import HOME_JOINT_POS  # noqa: E402


def measure_throughput(task: str, camera: bool, env_steps: int,
                       rounds: int = 20) -> Dict[str, float]:
    """
    Time env steps and the same number of raw physics steps on the same scene.

    Env and raw chunks alternate over ``rounds`` and the fastest chunk of each counts, so
    load from other processes on the machine affects both sides alike.
    """
    env = make_env(task, cameras={'scene': {'enabled': camera}})
    action = HOME_JOINT_POS.copy()
    per_round = max(1, env_steps // rounds)
    physics_per_step = env.config.physics_steps_per_control
    env_best = raw_best = float('inf')
    try:
        scene = env._scene  # the raw loop must run on exactly the env's scene
        for _ in range(rounds):
            env.reset(seed=0)
            env.step(action)
            start = time.process_time()
            for _ in range(per_round):
                _, _, terminated, truncated, _ = env.step(action)
                if terminated or truncated:
                    env.reset(seed=0)
            env_best = min(env_best, time.process_time() - start)
            env.reset(seed=0)
            env.set_joint_targets(action)
            cam = env.config.cameras['scene']
            start = time.process_time()
            for _ in range(per_round):
                for _ in range(physics_per_step):
                    scene.p.stepSimulation(physicsClientId=scene.client)
                if camera:
                    scene.image(cam.width, cam.height, cam, cam.depth)
            raw_best = min(raw_best, time.process_time() - start)
    finally:
        env.close()
    physics_steps = per_round * physics_per_step
    env_physics_hz = physics_steps / env_best
    raw_hz = physics_steps / raw_best
    return {'env_steps_per_s': per_round / env_best, 'env_physics_steps_per_s': env_physics_hz,
            'raw_physics_steps_per_s': raw_hz, 'ratio': env_physics_hz / raw_hz}


def main() -> int:
    """Run the benchmark, print a table and write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default='bench_sim.json', help='JSON file to write')
    parser.add_argument('--episodes', type=int, default=100,
                        help='expert episodes per task (0 skips the expert)')
    parser.add_argument('--env-steps', type=int, default=400,
                        help='env steps timed per configuration')
    parser.add_argument('--noise', type=float, default=DEFAULT_NOISE_STD,
                        help='expert noise std (m)')
    args = parser.parse_args()
    results: Dict[str, Dict] = {'throughput': {}, 'expert': {}}
    for task in TASK_NAMES:
        for camera in (False, True):
            key = f'{task}/{"camera_84x84" if camera else "no_camera"}'
            steps = args.env_steps if not camera else max(1, args.env_steps // 4)
            res = measure_throughput(task, camera, steps)
            results['throughput'][key] = res
            print(f'{key:28s} env {res["env_steps_per_s"]:8.1f} steps/s  '
                  f'physics {res["env_physics_steps_per_s"]:8.0f}/s  '
                  f'raw {res["raw_physics_steps_per_s"]:8.0f}/s  ratio {res["ratio"]:.2f}')
    if args.episodes > 0:
        for task in TASK_NAMES:
            start = time.process_time()
            res = evaluate_expert(task, args.episodes, seed=0, noise_std=args.noise)
            res['wall_s'] = time.process_time() - start
            results['expert'][task] = res
            print(f'expert {task:10s} success {res["success_rate"] * 100:5.1f}% '
                  f'({res["successes"]}/{res["episodes"]}) mean steps '
                  f'{res["mean_steps"]:.1f} in {res["wall_s"]:.0f} s')
    with open(args.out, 'w', encoding='utf-8') as stream:
        json.dump(results, stream, indent=2)
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
