"""``lam-ros export``: write a checkpoint as ONNX / TorchScript / torch.export, parity-checked."""

import argparse
import os
import sys
from typing import Any

DEFAULT_TOLERANCE = 1e-4


def register(subparsers: Any) -> None:
    """Add the ``export`` sub-command."""
    parser = subparsers.add_parser(
        'export', help='export a checkpoint for deployment (ONNX, TorchScript, torch.export)',
        description='Export the policy of a checkpoint (normalisation included: observations '
                    'in real units in, the chunk of joint targets out) and check each file '
                    'against the PyTorch model on random inputs. The inference node runs the '
                    'result with backend:=onnx (or torchscript, export).')
    parser.add_argument('--checkpoint', required=True, metavar='DIR',
                        help='checkpoint directory (e.g. RUN_DIR/best)')
    parser.add_argument('--out', default='', metavar='DIR',
                        help='export directory (default: CHECKPOINT/export)')
    parser.add_argument('--formats', default='onnx,torchscript,export',
                        help='comma-separated subset of onnx,torchscript,export (default: all)')
    parser.add_argument('--tolerance', type=float, default=DEFAULT_TOLERANCE,
                        help='largest accepted difference from the PyTorch model, in rad / m '
                             '(default: %(default)s)')
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Export; exit 0 when every format is within tolerance, 1 when not, 2 on bad input."""
    from lam_ros.policy import CheckpointError
    from lam_ros.policy.export import export_policy
    formats = [f.strip() for f in args.formats.split(',') if f.strip()]
    try:
        report = export_policy(args.checkpoint, args.out or None, formats)
    except (CheckpointError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    worst = 0.0
    for name in formats:
        path = os.path.join(report['out_dir'], report['files'][name])
        error = report['parity_max_abs_error'][name]
        worst = max(worst, error)
        print(f'{name:12s} {path} ({os.path.getsize(path) / 1e6:.1f} MB), max abs error vs '
              f'PyTorch {error:.2e}')
    print(f'inputs: {", ".join(report["inputs"])} -> chunk (batch, '
          f'{report["checkpoint"]["policy_config"]["chunk_size"]}, '
          f'{len(report["checkpoint"]["joint_names"])})')
    if worst > args.tolerance:
        print(f'error: an export differs from the PyTorch model by {worst:.2e} > tolerance '
              f'{args.tolerance:.0e}; do not deploy it', file=sys.stderr)
        return 1
    return 0
