"""``lam-ros dataset``: build a training cache from bags, inspect it, replay an episode."""

import argparse
from pathlib import Path
import sys
from typing import Any, Callable, Dict, Optional

COMMAND = 'dataset'
HELP = 'build, inspect or replay recorded datasets'


def _mapping(args: argparse.Namespace) -> Any:
    from lam_ros.data.bags.reader import mapping_for_source, TopicMapping
    if args.mapping:
        return TopicMapping.from_yaml(args.mapping)
    return mapping_for_source(args.source)


def build_options(args: argparse.Namespace) -> Dict[str, Any]:
    """Return the ``BuildOptions`` fields the dataset flags set (see :func:`add_build_flags`)."""
    return {'max_gap_s': args.max_gap_s, 'min_duration_s': args.min_duration_s,
            'include_interrupted': args.include_interrupted,
            'include_failures': args.include_failures,
            'image_size': tuple(args.image_size) if args.image_size else None}


def report(dataset: Any, strict: bool) -> int:
    """
    Print the build's warnings and the exclusion report on stderr; return the exit code.

    1 when no episode is usable, or with ``strict`` when any episode was excluded; else 0.
    """
    from lam_ros.data.dataset.report import exclusion_lines
    lines = [f'warning: {w}' for w in dataset.warnings] + exclusion_lines(dataset)
    if lines:
        print('\n'.join(lines), file=sys.stderr)
    if not dataset.episodes:
        print('error: no usable episode; see the exclusion report above', file=sys.stderr)
        return 1
    if strict and dataset.exclusions:
        print(f'error: --strict: {len(dataset.exclusions)} episodes excluded', file=sys.stderr)
        return 1
    return 0


def _print_summary(dataset: Any) -> None:
    from lam_ros.data.dataset.report import summary_lines
    print('\n'.join(summary_lines(dataset)))


def _build(args: argparse.Namespace) -> int:
    from lam_ros.cli._checks import output_file
    output_file(args.out, '--out')
    from lam_ros.data.dataset.build import build_dataset, load_or_build
    mapping = _mapping(args)
    if args.force:
        dataset = build_dataset(args.source, mapping, args.rate_hz, **build_options(args))
        dataset.save(args.out)
        cached = False
    else:
        dataset, cached = load_or_build(args.source, args.out, mapping, args.rate_hz,
                                        **build_options(args))
    _print_summary(dataset)
    print(f'{"cache up to date" if cached else "wrote"}: {args.out}')
    return report(dataset, args.strict)


def _info(args: argparse.Namespace) -> int:
    from lam_ros.cli._checks import output_file
    output_file(args.plot, '--plot', ('.png', '.pdf', '.svg'))
    from lam_ros.data.dataset.build import build_dataset, Dataset
    from lam_ros.data.dataset.report import plot_dataset
    if Path(args.source).is_file():
        dataset = Dataset.load(args.source)
    else:
        dataset = build_dataset(args.source, _mapping(args), args.rate_hz,
                                **build_options(args))
    _print_summary(dataset)
    if args.plot and dataset.episodes:
        print(f'plot: {plot_dataset(dataset, args.plot)}')
    return report(dataset, args.strict)


def _replay(args: argparse.Namespace) -> int:
    from lam_ros.data.bags.reader import EpisodeError
    from lam_ros.data.bags.replay import load_recording
    try:
        recording = load_recording(args.source, args.episode, _mapping(args))
    except EpisodeError as exc:
        print(f'error: cannot replay {args.episode}: {exc}', file=sys.stderr)
        return 1
    try:
        from lam_ros.nodes.replay_node import describe_tracking, replay
    except ImportError as exc:
        print(f'error: replay needs rclpy and the ROS message packages ({exc}); source a ROS 2 '
              'install or pip install ros-rclpy ros-std-msgs ros-sensor-msgs '
              'ros-trajectory-msgs', file=sys.stderr)
        return 1
    try:
        sent, report = replay(recording,
                              command_topic=args.topic or recording.mapping.command_topic,
                              command_interface=args.interface, speed=args.speed,
                              max_start_deviation=args.max_start_deviation,
                              check_start_state=not args.no_state_check,
                              restore_scene=not args.no_scene, scene_node=args.scene_node,
                              episode=args.episode)
    except RuntimeError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 1
    print(f'replayed {sent} commands of {args.episode}; scene {report["scene"]}; tracking '
          f'error vs the recording: {describe_tracking(report)}')
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


def add_mapping_flag(parser: argparse.ArgumentParser) -> None:
    """Add ``--mapping``: which topics and joints of the bags mean what."""
    parser.add_argument('--mapping', metavar='YAML',
                        help='topic, joint and frame mapping of the bags (see '
                             'config/dataset_mapping.example.yaml); default: the topics of '
                             "dataset.yaml, else the robot description's")


def add_build_flags(parser: argparse.ArgumentParser) -> None:
    """Add the flags that decide how bags become a dataset and which episodes it keeps."""
    parser.add_argument('--rate-hz', type=float, default=None, metavar='HZ',
                        help='policy rate in Hz (default: the control rate dataset.yaml '
                             'recorded, else the rate the commands in the bags were sent at; '
                             'a rate that differs from the recording is a warning)')
    parser.add_argument('--max-gap-s', type=float, default=0.5, metavar='S',
                        help='longest silence allowed on a required topic, in seconds '
                             '(default: %(default)s)')
    parser.add_argument('--min-duration-s', type=float, default=0.0, metavar='S',
                        help='shortest episode kept, in seconds (default: %(default)s: every '
                             'episode, however short)')
    parser.add_argument('--include-failures', action='store_true',
                        help='also train on episodes whose recorded outcome is a failure '
                             '(default: successful episodes and those without an outcome)')
    parser.add_argument('--include-interrupted', action='store_true',
                        help='also use episodes the recorder saved as interrupted (default: '
                             'complete episodes only)')
    parser.add_argument('--image-size', type=int, nargs=2, default=None,
                        metavar=('HEIGHT', 'WIDTH'),
                        help="resize every camera frame to this size, the policy's input "
                             '(default: keep the recorded size)')
    parser.add_argument('--strict', action='store_true',
                        help='exit with status 1 when any episode is excluded (default: '
                             'report exclusions on stderr and go on)')


def _add_common(parser: argparse.ArgumentParser) -> None:
    add_mapping_flag(parser)
    add_build_flags(parser)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``dataset build|info|replay`` to the ``lam-ros`` command."""
    from lam_ros.cli._checks import positive
    parser = subparsers.add_parser(
        COMMAND, help=HELP,
        description='Work with recorded datasets (a recorder output directory with '
                    'dataset.yaml, a folder of rosbag2 bags from ros2 bag record, or one bag): '
                    'build resamples them into a training cache, info summarises and plots '
                    'them, replay sends one episode back to a robot or sim_node.')
    sub = parser.add_subparsers(dest='dataset_command', metavar='ACTION')
    parser.set_defaults(func=lambda _args: (parser.print_help(), 2)[1])

    build = sub.add_parser('build', help='resample bags into a training cache',
                           description='Resample every usable episode at the dataset rate '
                                       'into one .safetensors cache (rebuilt only when the '
                                       'bags or options change).')
    build.add_argument('source', help='recorder output dir, folder of bags, or one bag')
    build.add_argument('--out', required=True, metavar='CACHE',
                       help='cache file to write (.safetensors)')
    build.add_argument('--force', action='store_true',
                       help='rebuild even if the cache is fresh (default: off)')
    _add_common(build)
    build.set_defaults(func=_guarded(_build))

    info = sub.add_parser('info', help='summarise a source or a cache',
                          description='Print episode counts, durations, outcomes and what '
                                      'was excluded; --plot draws the joint trajectories.')
    info.add_argument('source', help='bags (built on the fly) or a cache file')
    info.add_argument('--plot', metavar='PNG',
                      help='save a plot of the joint trajectories, coloured by outcome '
                           '(default: no plot)')
    _add_common(info)
    info.set_defaults(func=_guarded(_info))

    replay = sub.add_parser('replay', help="republish an episode's commands over ROS 2",
                            description="Restore the episode's recorded scene in sim_node "
                                        '(warns when there is none, e.g. on a real robot), '
                                        'republish its commands at their timing and report '
                                        'the tracking error against the recorded joint '
                                        'states.')
    replay.add_argument('source', help='recorder output dir, folder of bags, or one bag')
    replay.add_argument('--episode', required=True, help='episode (bag directory) name')
    replay.add_argument('--topic', help="command topic (default: the mapping's)")
    replay.add_argument('--interface', choices=('forward', 'trajectory'), default='forward',
                        help='Float64MultiArray (forward) or JointTrajectory (trajectory) '
                             '(default: %(default)s)')
    replay.add_argument('--speed', type=positive(float), default=1.0,
                        help='time scale, 1 = as recorded, 2 = twice as fast (default: '
                             '%(default)s)')
    replay.add_argument('--max-start-deviation', type=positive(float), default=0.1,
                        metavar='RAD',
                        help='refuse when the arm is further than this from the first command, '
                             'in rad (m for fingers) per joint (default: %(default)s)')
    replay.add_argument('--no-state-check', action='store_true',
                        help='start without comparing the first command with the joint state '
                             '(default: off)')
    replay.add_argument('--no-scene', action='store_true',
                        help='do not restore the recorded scene in the simulator (default: '
                             'off)')
    replay.add_argument('--scene-node', default='/sim_node', metavar='NODE',
                        help='simulator whose restore_seed parameter restores the scene '
                             '(default: %(default)s)')
    add_mapping_flag(replay)
    replay.set_defaults(func=_guarded(_replay))


def main(argv: Optional[list] = None) -> int:
    """Run ``lam-ros dataset`` alone (for ``python -m lam_ros.cli.dataset``)."""
    parser = argparse.ArgumentParser(prog='lam-ros')
    register(parser.add_subparsers(dest='command'))
    args = parser.parse_args(['dataset'] + list(sys.argv[1:] if argv is None else argv))
    return int(args.func(args) or 0)


if __name__ == '__main__':
    sys.exit(main())
