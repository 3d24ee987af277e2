"""
``lam-ros demos``: record scripted-expert demonstrations from the simulator, without ROS.

The episodes land in the same bag format and topics that ``recorder_node`` produces.
"""

import argparse
import sys
import time
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``demos`` sub-command."""
    from lam_ros.description import CameraConfig, TASK_NAMES
    parser = subparsers.add_parser(
        'demos', help='record scripted-expert demonstrations into rosbag2 (MCAP) episodes',
        description='Run the scripted expert in PyBullet as fast as possible and write each '
                    'episode as a recorder bag (joint states, commands, poses, success, '
                    'optionally camera) stamped with simulated time.')
    parser.add_argument('--task', required=True, choices=TASK_NAMES)
    parser.add_argument('--episodes', type=int, default=10, help='episodes (default: 10)')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the first episode; episode i uses seed + i (default: 0)')
    parser.add_argument('--noise', type=float, default=0.005,
                        help='expert demonstration noise std in m; 0.005 gives varied demos '
                             'that behaviour cloning learns well (default: %(default)s)')
    parser.add_argument('--output', required=True, metavar='DIR',
                        help='dataset directory; episodes are appended to an existing one')
    parser.add_argument('--robot', default='', metavar='NAME_OR_YAML',
                        help='robot description: a name in config/robots/ (panda, xarm6) or a '
                             'YAML path (default: panda)')
    parser.add_argument('--camera', action='store_true',
                        help='also record /camera/image_raw and /camera/camera_info')
    size = [CameraConfig.width, CameraConfig.height]
    parser.add_argument('--camera-size', type=int, nargs=2, default=size,
                        metavar=('WIDTH', 'HEIGHT'),
                        help=f'camera image size (default: {size[0]} {size[1]})')
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Record the episodes; print episodes/min and the success rate."""
    from lam_ros.cli._progress import episode_progress
    from lam_ros.data.recording.demos import DemoConfig, record_demos
    try:
        cfg = DemoConfig(task=args.task, episodes=args.episodes, seed=args.seed,
                         noise_std_m=args.noise, camera=args.camera,
                         camera_width=args.camera_size[0], camera_height=args.camera_size[1],
                         robot=args.robot)
        from lam_ros.description import load_robot
        load_robot(args.robot or None)
    except (ValueError, FileNotFoundError) as exc:
        print(f'lam-ros demos: {exc}', file=sys.stderr)
        return 2
    start = time.perf_counter()
    try:
        with episode_progress(cfg.episodes, f'demos {cfg.task}') as done:
            summary = record_demos(cfg, args.output, on_episode=lambda _index, ok: done(ok))
    except (ValueError, RuntimeError, OSError) as exc:
        print(f'lam-ros demos: {exc}', file=sys.stderr)
        return 1
    elapsed_s = time.perf_counter() - start
    n = summary['episodes']
    print(f'{n} {cfg.task} episodes in {elapsed_s:.1f} s ({60.0 * n / elapsed_s:.1f} '
          f'episodes/min), success {summary["successes"]}/{n} '
          f'({100.0 * summary["successes"] / n:.0f}%), {summary["sim_duration_s"]:.1f} s of '
          f'simulated time -> {args.output} ({summary["names"][0]} .. {summary["names"][-1]})')
    return 0
