"""``lam-ros train``: behaviour cloning from recorded demonstrations into a run directory."""

import argparse
from contextlib import contextmanager
from dataclasses import fields
import os
import signal
import sys
from typing import Any, Dict, Iterator, List, Optional

COMMAND = 'train'
HELP = 'train a policy by behaviour cloning'

# What a robot also publishes over ROS; ee_pose is left out because a real arm only has it
# through its own forward kinematics, and rgb/depth are opt-in (slower to train).
DEFAULT_OBS = ('joint_pos', 'joint_vel', 'gripper_width', 'object_pose', 'goal_pose')
CACHE_NAME = 'dataset_cache.safetensors'


def register(subparsers: Any) -> None:
    """Add the ``train`` sub-command."""
    from lam_ros.cli._checks import task_name
    from lam_ros.cli.dataset import add_build_flags, add_mapping_flag
    from lam_ros.learn.bc import BCConfig
    from lam_ros.policy import PolicyConfig
    from lam_ros.policy.config import IMAGE_ENCODERS
    policy_defaults = {f.name: f.default for f in fields(PolicyConfig)}
    bc = BCConfig()
    parser = subparsers.add_parser(
        'train', help=HELP,
        description='Train a Transformer policy on demonstrations. Writes RUN_DIR/best and '
                    'RUN_DIR/last (checkpoints), metrics.csv and curves.png. Ctrl-C saves '
                    'RUN_DIR/last; running the same command again resumes from there.')
    parser.add_argument('--dataset', required=True, metavar='CACHE_OR_BAGS',
                        help='a dataset cache (.safetensors from lam-ros dataset build) or a '
                             f'directory of bags (cached as DIR/{CACHE_NAME})')
    parser.add_argument('--out', required=True, metavar='RUN_DIR', help='run directory')
    parser.add_argument('--task', default='', type=task_name,
                        help="task name stored in the checkpoint (default: dataset.yaml's)")
    parser.add_argument('--robot', default='', metavar='NAME_OR_YAML',
                        help="robot the policy commands (default: the dataset's); it must be "
                             'the robot the dataset was recorded on')
    data = parser.add_argument_group(
        'dataset from bags', 'how a directory of bags becomes the dataset (as lam-ros dataset '
        'build; a cache file keeps the settings it was built with; --strict applies to both)')
    add_mapping_flag(data)
    add_build_flags(data)
    model = parser.add_argument_group('policy')
    model.add_argument('--obs', default='', metavar='KEYS',
                       help='comma-separated observation keys (default: those of '
                            f'{", ".join(DEFAULT_OBS)} that the dataset has)')
    model.add_argument('--head', choices=('regression', 'gaussian'),
                       default=policy_defaults['head'], help='action head (default: %(default)s)')
    for flag, key, kind, what in (
            ('--history', 'history_len', int, 'observation steps seen'),
            ('--chunk', 'chunk_size', int, 'actions predicted per call'),
            ('--d-model', 'd_model', int, 'token width'),
            ('--heads', 'n_heads', int, 'attention heads'),
            ('--layers', 'n_layers', int, 'Transformer blocks'),
            ('--dropout', 'dropout', float, 'dropout probability'),
            ('--image-grid', 'image_grid', int, 'tokens per image = image_grid**2'),
            ('--image-keypoints', 'image_keypoints', int,
             "spatial-softmax keypoints per image ('resnet' encoder)"),
            ('--vector-tokens', 'vector_tokens', str,
             "vector observation tokens: 'key' (one per key and step) or 'step'"),
            ('--decoder-memory', 'decoder_memory_tokens', int,
             'decoder memory tokens per encoded token')):
        model.add_argument(flag, dest=key, type=kind, default=policy_defaults[key],
                           help=f'{what} (default: %(default)s)')
    model.add_argument('--image-encoder', choices=IMAGE_ENCODERS, default='resnet',
                       help="camera encoder: 'resnet' (ResNet-GroupNorm + spatial-softmax "
                            "keypoints) or 'cnn' (stride-2 convs, average-pooled) "
                            '(default: %(default)s)')
    model.add_argument('--image-channels', type=_channels,
                       default=tuple(policy_defaults['image_channels']),
                       metavar='C1,C2,...',
                       help='channels per stage of the camera encoder (default: 32,64,64)')
    opt = parser.add_argument_group('optimisation')
    for flag, key, kind, what in (
            ('--steps', 'steps', int, 'optimizer steps in total'),
            ('--batch-size', 'batch_size', int, 'windows per step'),
            ('--lr', 'lr', float, 'peak learning rate'),
            ('--weight-decay', 'weight_decay', float, 'AdamW weight decay'),
            ('--warmup-steps', 'warmup_steps', int, 'linear warmup steps'),
            ('--grad-clip', 'grad_clip', float, 'max gradient norm, 0 = off'),
            ('--obs-noise', 'obs_noise', float, 'training noise on vector observations, '
                                                'in dataset stds'),
            ('--image-shift', 'image_shift', int, 'random shift of training images in '
                                                  'pixels, 0 = off'),
            ('--val-fraction', 'val_fraction', float, 'episodes held out for validation'),
            ('--eval-interval', 'eval_interval', int, 'steps between checkpoints'),
            ('--seed', 'seed', int, 'seed'),
            ('--threads', 'num_threads', int, 'torch CPU threads, 0 = default'),
            ('--device', 'device', str, "'auto', 'cpu' or 'cuda'")):
        opt.add_argument(flag, dest=key, type=kind, default=getattr(bc, key),
                         help=f'{what} (default: %(default)s)')
    opt.add_argument('--no-progress', action='store_true',
                     help='hide the progress bar (default: shown)')
    parser.set_defaults(func=run)


def _channels(text: str) -> tuple:
    try:
        channels = tuple(int(c) for c in text.split(','))
    except ValueError:
        channels = ()
    if not channels or min(channels) < 1:
        raise argparse.ArgumentTypeError(
            f'expected comma-separated positive channel counts such as 32,64, got {text!r}')
    return channels


def load_dataset(source: str, rate_hz: Optional[float] = None, mapping: Any = None,
                 **options: Any) -> Any:
    """
    Load a cache file, or build (and cache) a dataset from a directory of bags.

    ``rate_hz`` None builds at the recording's rate; ``options`` are ``BuildOptions`` fields.
    """
    from lam_ros.data.dataset.build import Dataset, load_or_build
    if os.path.isfile(source):
        dataset = Dataset.load(source)
        if rate_hz is not None and abs(rate_hz - dataset.rate_hz) > 1e-9:
            raise ValueError(f'{source} was built at {dataset.rate_hz:g} Hz, not --rate-hz '
                             f'{rate_hz:g}; rebuild it: lam-ros dataset build BAGS --out '
                             f'{source} --rate-hz {rate_hz:g}')
        return dataset
    if not os.path.isdir(source):
        raise ValueError(f'--dataset {source!r} is neither a cache file nor a directory of '
                         'bags')
    dataset, _ = load_or_build(source, os.path.join(source, CACHE_NAME), mapping,
                               rate_hz=rate_hz, **options)
    return dataset


def choose_obs(requested: str, available: Dict[str, tuple]) -> List[str]:
    """Return the observation keys to train on; ValueError names what is missing."""
    if not requested:
        keys = [k for k in DEFAULT_OBS if k in available]
        if not keys:
            raise ValueError(f'the dataset has none of {list(DEFAULT_OBS)}; pass --obs with '
                             f'some of {sorted(available)}')
        return keys
    keys = [k.strip() for k in requested.split(',') if k.strip()]
    missing = [k for k in keys if k not in available]
    if missing:
        raise ValueError(f'--obs asks for {missing}, which the dataset does not have; it has '
                         f'{sorted(available)}')
    return keys


def _task_of(source: str) -> str:
    """Return the task a recording (dataset.yaml) or a dataset cache file names, or ''."""
    if os.path.isdir(source):
        from lam_ros.data.bags.reader import read_dataset_yaml
        return str((read_dataset_yaml(source) or {}).get('task') or '')
    if os.path.isfile(source):
        from lam_ros.data.dataset.build import Dataset
        try:
            return str(Dataset.read_metadata(source).get('task') or '')
        except (OSError, ValueError):
            return ''  # loading the dataset reports what is wrong with the file
    return ''


@contextmanager
def stop_requests() -> Iterator[Dict[str, bool]]:
    """
    Turn the first SIGINT / SIGTERM into a stop request (``flag['stop']``) while inside.

    A second SIGINT interrupts at once (KeyboardInterrupt), as without the handler.
    """
    flag = {'stop': False}

    def handler(signum: int, _frame: Any) -> None:
        if flag['stop'] and signum == signal.SIGINT:
            raise KeyboardInterrupt
        flag['stop'] = True

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def saved_step(run_dir: str) -> Optional[int]:
    """Return the step of RUN_DIR/last, None without a readable one."""
    import json
    try:
        with open(os.path.join(run_dir, 'last', 'config.json'), encoding='utf-8') as stream:
            return int((json.load(stream).get('metadata') or {}).get('step'))
    except (OSError, ValueError, TypeError):
        return None


def run(args: argparse.Namespace) -> int:
    """Build the configs from the flags and train; exit code 0 on success, 130 on Ctrl-C."""
    from lam_ros.cli._checks import writable_dir
    try:
        writable_dir(args.out, '--out')
        if not os.path.exists(args.dataset):
            raise ValueError(f'--dataset {args.dataset} does not exist')
    except ValueError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    from lam_ros.cli.dataset import build_options, report
    from lam_ros.learn.bc import BCConfig, train_bc
    from lam_ros.policy import PolicyConfig
    start = saved_step(args.out)
    try:
        bc_config = BCConfig(**{f.name: getattr(args, f.name) for f in fields(BCConfig)
                                if hasattr(args, f.name)},
                             progress=not args.no_progress and (start or 0) < args.steps)
        mapping = None
        if args.mapping:
            from lam_ros.data.bags.reader import TopicMapping
            mapping = TopicMapping.from_yaml(args.mapping)
        dataset = load_dataset(args.dataset, args.rate_hz, mapping, **build_options(args))
        code = report(dataset, args.strict)
        if code:
            return code
        spec = dataset.observation_spec()
        keys = choose_obs(args.obs, spec)
        policy = {'head': args.head}
        for key in ('history_len', 'chunk_size', 'd_model', 'n_heads', 'n_layers', 'dropout',
                    'image_encoder', 'image_channels', 'image_grid', 'image_keypoints',
                    'vector_tokens', 'decoder_memory_tokens'):
            policy[key] = getattr(args, key)
        if args.robot or dataset.robot:
            policy['robot'] = args.robot or dataset.robot
        policy_config = PolicyConfig(joint_names=tuple(dataset.joint_names),
                                     obs_spec={k: spec[k] for k in keys},
                                     control_rate_hz=dataset.rate_hz, **policy)
        task = args.task or _task_of(args.dataset) or None
        print(f'training on {len(dataset.episodes)} episodes ({dataset.num_steps} steps at '
              f'{dataset.rate_hz:g} Hz, {dataset.rate_source or "the cached rate"}), '
              f'observations {keys}, head {args.head}')
        if start is not None and start < args.steps:
            print(f'resuming from step {start} of {args.steps} ({os.path.join(args.out, "last")})')
        with stop_requests() as flag:
            result = train_bc(dataset, policy_config, bc_config, args.out, task=task,
                              should_stop=lambda: flag['stop'])
    except ValueError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    last = result.last_checkpoint
    if result.steps < args.steps:
        print(f'interrupted at step {result.steps}; saved {last}; rerun the same command to '
              'resume')
        return 130
    if result.steps == result.resumed_from:
        print(f'already complete: {result.steps} of {args.steps} steps in {args.out}; to train '
              f'further, rerun with a larger --steps (e.g. --steps {2 * args.steps}), which '
              f'resumes from {last}')
        return 0
    best = 'n/a' if result.best_val_loss is None else f'{result.best_val_loss:.4f}'
    print(f'done: {result.steps} steps ({result.steps - result.resumed_from} this session, '
          f'{result.wall_time_s:.0f} s), {result.num_parameters} parameters, best val loss '
          f'{best}\ncheckpoints: {result.best_checkpoint} {last}\n'
          f'metrics: {result.metrics_csv} {result.curves_png}')
    return 0
