"""
The ``lam-ros`` command: the core's jobs on machines with or without ROS.

Every module in this package that defines ``register(subparsers)`` adds one sub-command;
``register`` adds a parser and sets its ``func`` default to a callable taking the parsed
arguments and returning an exit code.
"""

import argparse
import importlib
import pkgutil
import sys
from typing import List, Optional


def build_parser() -> argparse.ArgumentParser:
    """Collect the sub-commands of every module in this package."""
    parser = argparse.ArgumentParser(
        prog='lam-ros',
        description='Record demonstrations, train and evaluate manipulation policies.')
    subparsers = parser.add_subparsers(dest='command', metavar='COMMAND')
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith('_'):
            continue
        module = importlib.import_module(f'{__name__}.{info.name}')
        register = getattr(module, 'register', None)
        if register is not None:
            register(subparsers)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of ``lam-ros``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, 'func', None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == '__main__':
    sys.exit(main())
