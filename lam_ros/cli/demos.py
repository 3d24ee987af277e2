"""
``lam-ros demos``: record scripted-expert demonstrations from the simulator, without ROS.

The episodes land in the same bag format and topics that ``recorder_node`` produces.
"""

import argparse
import sys
import time
from typing import Any

COMMAND = 'demos'
HELP = 'record scripted-expert demonstrations into rosbag2 (MCAP) episodes'


def register(subparsers: Any) -> None:
    """Add the ``demos`` sub-command."""
    from lam_ros.cli._checks import non_negative, positive, task_name
    from lam_ros.description import CameraConfig, TASK_NAMES
    from lam_ros.sim.expert import DEFAULT_NOISE_STD
    parser = subparsers.add_parser(
        COMMAND, help=HELP,
        description='Run the scripted expert in PyBullet as fast as possible and write each '
                    'episode as a recorder bag (joint states, commands, poses, success, '
                    'optionally cameras) stamped with simulated time.')
    parser.add_argument('--task', required=True, type=task_name,
                        help=f'one of {", ".join(TASK_NAMES)}')
    parser.add_argument('--episodes', type=int, default=10,
                        help='episodes (default: %(default)s)')
    parser.add_argument('--seed', type=non_negative(int), default=0,
                        help='seed of the first episode; episode i uses seed + i (default: '
                             '%(default)s)')
    parser.add_argument('--noise', type=non_negative(float, 'm'), default=DEFAULT_NOISE_STD,
                        help='expert demonstration noise std in m (default: %(default)s)')
    parser.add_argument('--miss-fraction', type=float, default=0.0, metavar='F',
                        help='fraction of the episodes (evenly spread) whose first grasp '
                             'closes beside the object; the expert then opens and grasps '
                             'again, demonstrating a recovery (default: %(default)s)')
    parser.add_argument('--output', required=True, metavar='DIR',
                        help='dataset directory; episodes are appended to an existing one')
    parser.add_argument('--robot', default='', metavar='NAME_OR_YAML',
                        help='robot description: a name in config/robots/ (panda, xarm6) or a '
                             'YAML path (default: panda)')
    parser.add_argument('--cameras', default='', metavar='NAMES',
                        help='comma-separated cameras to record: scene (fixed, facing the '
                             'table), wrist (on the hand); each as <ns>/image_raw (rgb8) and '
                             '<ns>/camera_info, <ns> from the robot description (default: none)')
    parser.add_argument('--camera', action='store_true',
                        help='shorthand for --cameras scene (default: off)')
    size = [CameraConfig.width, CameraConfig.height]
    parser.add_argument('--camera-size', type=positive(int), nargs=2, default=size,
                        metavar=('WIDTH', 'HEIGHT'),
                        help=f'camera image size in pixels (default: {size[0]} {size[1]})')
    parser.add_argument('--camera-rate', type=positive(float), default=None, metavar='HZ',
                        help='camera frame rate in simulated time (default: the control '
                             'rate, a fresh frame every policy step)')
    parser.add_argument('--depth', action='store_true',
                        help="also record each camera's depth image (32FC1, m) (default: off)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Record the episodes; print episodes/min and the success rate."""
    from lam_ros.cli._checks import writable_dir
    from lam_ros.cli._progress import episode_progress
    from lam_ros.data.recording.demos import DemoConfig, record_demos
    try:
        writable_dir(args.output, '--output')
        cfg = DemoConfig(task=args.task, episodes=args.episodes, seed=args.seed,
                         noise_std_m=args.noise, miss_fraction=args.miss_fraction,
                         cameras=_cameras(args),
                         camera_width=args.camera_size[0], camera_height=args.camera_size[1],
                         camera_rate_hz=args.camera_rate or 0.0, camera_depth=args.depth,
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


def _cameras(args: argparse.Namespace) -> list:
    names = [n.strip() for n in args.cameras.split(',') if n.strip()]
    if args.camera and 'scene' not in names:
        names.insert(0, 'scene')
    if len(set(names)) != len(names):
        raise ValueError(f'--cameras names a camera twice: {args.cameras!r}')
    return names
