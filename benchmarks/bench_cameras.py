"""
Benchmark the simulated cameras and a two-camera dataset: render time and memory.

Run: ``flock /tmp/lam_ros_cpu.lock python benchmarks/bench_cameras.py --out bench_cameras.json``
(``--episodes 100`` by default; ``--skip-dataset`` times the rendering only).

``render``: CPU ms per frame of each camera (``scene``, ``wrist``) at each size, RGB only and
RGB + depth, on the Panda and the xArm 6, while the arm moves (the scripted expert drives
it), the fastest of several rounds so load from other processes counts least.
``dataset``: ``lam-ros demos`` episodes with both cameras at the control rate, then
``build_dataset`` resizing to the policy's size, in a fresh process whose peak resident
memory (``ru_maxrss``) is reported with the size of the arrays it holds.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lam_ros.sim import make_env, ScriptedExpert  # noqa: E402


def render_ms(robot: str, camera: str, size: int, depth: bool, frames: int = 40,
              rounds: int = 5) -> float:
    """Return the fastest round's CPU ms per frame of ``camera`` at ``size`` x ``size``."""
    env = make_env('lift', robot=robot, camera_observations=False, cameras={
        camera: {'enabled': True, 'width': size, 'height': size, 'depth': depth}})
    expert = ScriptedExpert('lift', seed=0, robot=env.robot)
    best = float('inf')
    try:
        obs, _ = env.reset(seed=0)
        for _ in range(rounds):
            spent = 0.0
            for _ in range(frames):
                obs, _, done, truncated, _ = env.step(env.check_command(expert.act(obs)))
                if done or truncated:
                    obs, _ = env.reset(seed=0)
                    expert.reset(seed=0)
                start = time.process_time()
                env.camera_image(camera)
                spent += time.process_time() - start
            best = min(best, spent / frames)
    finally:
        env.close()
        expert.kin.close()
    return 1e3 * best


_DATASET_CHILD = r"""
import json, resource, sys, time
from lam_ros.data.dataset.build import build_dataset
source, height, width = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
start = time.perf_counter()
ds = build_dataset(source, image_size=(height, width))
build_s = time.perf_counter() - start
image_bytes = sum(v.nbytes for ep in ds.episodes for k, v in ep.obs.items()
                  if k.endswith(('_rgb', '_depth')))
all_bytes = sum(v.nbytes for ep in ds.episodes for v in ep.obs.values())
print(json.dumps({'episodes': len(ds.episodes), 'steps': ds.num_steps,
                  'observation_spec': {k: list(v) for k, v in ds.observation_spec().items()},
                  'image_mb': image_bytes / 2**20, 'obs_mb': all_bytes / 2**20,
                  'build_s': build_s,
                  'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def dataset_memory(episodes: int, size: int, record_size: int) -> Dict[str, Any]:
    """Record ``episodes`` lift demos with both cameras; build them in a fresh process."""
    from lam_ros.data.recording.demos import DemoConfig, record_demos
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        summary = record_demos(DemoConfig(task='lift', episodes=episodes, seed=0,
                                          cameras=('scene', 'wrist'),
                                          camera_width=record_size,
                                          camera_height=record_size), tmp)
        record_s = time.perf_counter() - start
        bag_mb = sum(os.path.getsize(os.path.join(root, f))
                     for root, _, files in os.walk(tmp) for f in files) / 2**20
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]
            + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p]))
        out = subprocess.run([sys.executable, '-c', _DATASET_CHILD, tmp, str(size), str(size)],
                             check=True, capture_output=True, text=True, env=env)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result.update(recorded_episodes=summary['episodes'], successes=summary['successes'],
                  record_s=record_s, bags_mb=bag_mb, recorded_size=record_size)
    return result


def main() -> int:
    """Run the benchmark, print a table and write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument('--out', default='bench_cameras.json', help='JSON file to write')
    parser.add_argument('--sizes', type=int, nargs='+', default=[84, 128],
                        help='square image sizes to time (default: 84 128)')
    parser.add_argument('--episodes', type=int, default=100,
                        help='episodes of the dataset memory test (default: 100)')
    parser.add_argument('--record-size', type=int, default=128,
                        help='size the dataset cameras record at before the build resizes '
                             'to 84 (default: 128)')
    parser.add_argument('--skip-dataset', action='store_true', help='time the rendering only')
    args = parser.parse_args()
    results: Dict[str, Any] = {'render_ms_per_frame': {}}
    for robot in ('panda', 'xarm6'):
        for camera in ('scene', 'wrist'):
            for size in args.sizes:
                for depth in (False, True):
                    key = f'{robot}/{camera}/{size}x{size}/{"rgbd" if depth else "rgb"}'
                    ms = render_ms(robot, camera, size, depth)
                    results['render_ms_per_frame'][key] = ms
                    print(f'{key:32s} {ms:6.2f} ms/frame')
    if not args.skip_dataset:
        res = dataset_memory(args.episodes, 84, args.record_size)
        results['dataset'] = res
        print(f'dataset: {res["episodes"]} episodes x 2 cameras, {res["steps"]} steps, '
              f'{res["recorded_size"]}px -> 84x84, images {res["image_mb"]:.0f} MB, '
              f'peak RSS {res["peak_rss_mb"]:.0f} MB, build {res["build_s"]:.0f} s '
              f'(recording {res["record_s"]:.0f} s, bags {res["bags_mb"]:.0f} MB)')
    with open(args.out, 'w', encoding='utf-8') as stream:
        json.dump(results, stream, indent=2)
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
