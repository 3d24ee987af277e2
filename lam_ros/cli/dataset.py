"""``lam-ros dataset``: build a training cache from bags, inspect it, replay an episode."""

import argparse
from pathlib import Path
import sys
from typing import Callable, Optional

from lam_ros.data.bags.reader import EpisodeError, mapping_for_source, TopicMapping
from lam_ros.data.bags.replay import load_episode


def _mapping(args: argparse.Namespace) -> TopicMapping:
    if args.mapping:
        return TopicMapping.from_yaml(args.mapping)
    return mapping_for_source(args.source)


def _build_options(args: argparse.Namespace) -> dict:
    return {'max_gap_s': args.max_gap_s, 'min_duration_s': args.min_duration_s,
            'include_interrupted': args.include_interrupted}


def _print_summary(dataset) -> None:
    from lam_ros.data.dataset.report import summary_lines
    print('\n'.join(summary_lines(dataset)))


def _build(args: argparse.Namespace) -> int:
    from lam_ros.data.dataset.build import build_dataset, load_or_build
    mapping = _mapping(args)
    if args.force:
        dataset = build_dataset(args.source, mapping, args.rate_hz, **_build_options(args))
        dataset.save(args.out)
        cached = False
    else:
        dataset, cached = load_or_build(args.source, args.out, mapping, args.rate_hz,
                                        **_build_options(args))
    _print_summary(dataset)
    print(f'{"cache up to date" if cached else "wrote"}: {args.out}')
    if not dataset.episodes:
        print('error: no usable episode; see the exclusion report above', file=sys.stderr)
        return 1
    return 0


def _info(args: argparse.Namespace) -> int:
    from lam_ros.data.dataset.build import build_dataset, Dataset
    from lam_ros.data.dataset.report import plot_dataset
    if Path(args.source).is_file():
        dataset = Dataset.load(args.source)
    else:
        dataset = build_dataset(args.source, _mapping(args), args.rate_hz,
                                **_build_options(args))
    _print_summary(dataset)
    if args.plot:
        print(f'plot: {plot_dataset(dataset, args.plot)}')
    return 0


def _replay(args: argparse.Namespace) -> int:
    try:
        times_ns, commands, mapping = load_episode(args.source, args.episode, _mapping(args))
    except EpisodeError as exc:
        print(f'error: cannot replay {args.episode}: {exc}', file=sys.stderr)
        return 1
    try:
        from lam_ros.nodes.replay_node import replay
    except ImportError as exc:
        print(f'error: replay needs rclpy and the ROS message packages ({exc}); source a ROS 2 '
              'install or pip install ros-rclpy ros-std-msgs ros-sensor-msgs '
              'ros-trajectory-msgs', file=sys.stderr)
        return 1
    try:
        sent = replay(times_ns, commands, mapping.joint_names,
                      command_topic=args.topic or mapping.command_topic,
                      command_interface=args.interface, speed=args.speed,
                      joint_state_topic=mapping.joint_state_topic,
                      max_start_deviation=args.max_start_deviation,
                      check_start_state=not args.no_state_check)
    except RuntimeError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 1
    print(f'replayed {sent} commands of {args.episode}')
    return 0


def _guarded(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn bad input (a ValueError with its explanation) into a message and exit code 2."""
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except (ValueError, KeyError) as exc:
            print(f'error: {exc}', file=sys.stderr)
            return 2
    return run


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--mapping', metavar='YAML',
                        help='topic mapping (see config/dataset_mapping.example.yaml); default: '
                             'dataset.yaml topics or the sim defaults')
    parser.add_argument('--rate-hz', type=float, default=None,
                        help='policy rate (Hz; default: the control rate dataset.yaml recorded, '
                             "else the robot description's)")
    parser.add_argument('--max-gap-s', type=float, default=0.5,
                        help='longest silence allowed on a required topic (s)')
    parser.add_argument('--min-duration-s', type=float, default=1.0,
                        help='shortest episode kept (s)')
    parser.add_argument('--include-interrupted', action='store_true',
                        help='also use episodes the recorder saved as interrupted')


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``dataset build|info|replay`` to the ``lam-ros`` command."""
    parser = subparsers.add_parser('dataset', help='build, inspect or replay recorded datasets')
    sub = parser.add_subparsers(dest='dataset_command', metavar='ACTION')
    parser.set_defaults(func=lambda _args: (parser.print_help(), 2)[1])

    build = sub.add_parser('build', help='resample bags into a training cache')
    build.add_argument('source', help='recorder output dir, folder of bags, or one bag')
    build.add_argument('--out', required=True, metavar='CACHE',
                       help='cache file to write (.safetensors)')
    build.add_argument('--force', action='store_true', help='rebuild even if the cache is fresh')
    _add_common(build)
    build.set_defaults(func=_guarded(_build))

    info = sub.add_parser('info', help='summarise a source or a cache')
    info.add_argument('source', help='bags (built on the fly) or a cache file')
    info.add_argument('--plot', metavar='PNG', help='save a plot of the joint trajectories')
    _add_common(info)
    info.set_defaults(func=_guarded(_info))

    replay = sub.add_parser('replay', help="republish an episode's commands over ROS 2")
    replay.add_argument('source', help='recorder output dir, folder of bags, or one bag')
    replay.add_argument('--episode', required=True, help='episode (bag directory) name')
    replay.add_argument('--topic', help="command topic (default: the mapping's)")
    replay.add_argument('--interface', choices=('forward', 'trajectory'), default='forward',
                        help='Float64MultiArray (forward) or JointTrajectory (trajectory)')
    replay.add_argument('--speed', type=float, default=1.0, help='time scale (1 = original)')
    replay.add_argument('--max-start-deviation', type=float, default=0.1,
                        help='refuse when the arm is further than this (rad or m per joint) '
                             'from the first command')
    replay.add_argument('--no-state-check', action='store_true',
                        help='start without comparing the first command with the joint state')
    _add_common(replay)
    replay.set_defaults(func=_guarded(_replay))


def main(argv: Optional[list] = None) -> int:
    """Run ``lam-ros dataset`` alone (for ``python -m lam_ros.cli.dataset``)."""
    parser = argparse.ArgumentParser(prog='lam-ros')
    register(parser.add_subparsers(dest='command'))
    args = parser.parse_args(['dataset'] + list(sys.argv[1:] if argv is None else argv))
    return int(args.func(args) or 0)


if __name__ == '__main__':
    sys.exit(main())
