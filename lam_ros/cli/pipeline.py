"""``lam-ros pipeline``: the trainer node's whole pipeline on a machine without ROS."""

import argparse
import os
import signal
import sys
import threading
import time
from typing import Any, Dict, List

import yaml

COMMAND = 'pipeline'
HELP = 'dataset -> BC -> RL -> evaluation -> export, from a params file'


def register(subparsers: Any) -> None:
    """Add the ``pipeline`` sub-command."""
    parser = subparsers.add_parser(
        COMMAND, help=HELP,
        description='Run the training pipeline of trainer_node from its params file '
                    '(config/train.yaml layout: trainer_node: ros__parameters: ...). Running '
                    'it again resumes. The first Ctrl-C stops after saving the last '
                    'checkpoint; under torchrun every rank trains.')
    parser.add_argument('--config', default='', metavar='YAML',
                        help='params file (e.g. config/train.yaml) (default: every parameter at '
                             'its default)')
    parser.add_argument('--dataset', default=None,
                        help="overrides the file's dataset (default: the file's)")
    parser.add_argument('--output', default=None, metavar='RUN_DIR',
                        help="overrides the file's output_dir (default: the file's)")
    parser.add_argument('--set', action='append', default=[], metavar='NAME=VALUE',
                        help='override one parameter (YAML value), e.g. --set bc_steps=500 '
                             '(default: none)')
    parser.set_defaults(func=run)


def overrides_from(args: argparse.Namespace) -> Dict[str, Any]:
    """Collect --dataset, --output and --set NAME=VALUE into a dict."""
    values: Dict[str, Any] = {}
    for item in args.set:
        name, sep, text = item.partition('=')
        if not sep or not name.strip():
            raise ValueError(f'--set expects NAME=VALUE, got {item!r}')
        try:
            values[name.strip()] = yaml.safe_load(text) if text else ''
        except yaml.YAMLError as err:
            raise ValueError(f'--set {item!r}: not a YAML value ({err})') from err
    if args.dataset is not None:
        values['dataset'] = args.dataset
    if args.output is not None:
        values['output_dir'] = args.output
    return values


def _graceful_stop() -> List[bool]:
    """Make the first SIGINT/SIGTERM a stop request; return the flag it sets."""
    flag = [False]
    first = [0.0]
    if threading.current_thread() is not threading.main_thread():
        return flag

    def handler(signum: int, _frame: Any) -> None:
        # A terminal's Ctrl-C and torchrun's forwarding of it arrive together: only a
        # signal well after the first one aborts.
        if flag[0]:
            if time.monotonic() - first[0] > 2.0:
                raise KeyboardInterrupt
            return
        flag[0], first[0] = True, time.monotonic()
        print(f'\n{signal.Signals(signum).name}: stopping after saving the last checkpoint '
              '(again to abort)', file=sys.stderr, flush=True)

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return flag


def run(args: argparse.Namespace) -> int:
    """Load the configuration and run the pipeline; 0 when done, 2 on bad input, 130 stopped."""
    from lam_ros.learn.pipeline import run_pipeline
    from lam_ros.learn.pipeline_config import load_pipeline_config
    try:
        config = load_pipeline_config(args.config or None, overrides_from(args))
        config.check_paths()
    except ValueError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    stop = _graceful_stop()

    def show(progress: Any) -> None:
        eta = '' if progress.eta_s is None else f' (ETA {progress.eta_s:.0f} s)'
        print(f'[{progress.stage}] {progress.message}{eta}', flush=True)

    try:
        result = run_pipeline(config, on_progress=show, should_stop=lambda: stop[0])
    except ValueError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    if os.environ.get('RANK', '0') not in ('', '0'):
        return 0 if result.status == 'done' else 130  # rank 0 reports for every rank
    if result.status != 'done':
        print(f'stopped; last checkpoint: {result.last_checkpoint or "none"}; run the same '
              'command again to resume')
        return 130
    print(f'best checkpoint ({result.chosen}): {result.best_checkpoint}\n'
          f'summary: {result.summary_path}')
    return 0
