"""
The ``lam-ros`` command: the core's jobs on machines with or without ROS.

Every module in this package that defines ``register(subparsers)`` adds one sub-command;
``register`` adds a parser and sets its ``func`` default to a callable taking the parsed
arguments and returning an exit code. A module also names its ``COMMAND`` (default: the
module's name) and its one-line ``HELP``, so that ``lam-ros --help`` lists every command
without building their parsers.
"""

import argparse
import importlib
import pkgutil
import sys
from typing import Any, List, Optional, Tuple


def _commands() -> List[Tuple[str, Any]]:
    """Return (command, module) for every module here with a ``register``; cheap to import."""
    out = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith('_'):
            continue
        module = importlib.import_module(f'{__name__}.{info.name}')
        if getattr(module, 'register', None) is not None:
            out.append((getattr(module, 'COMMAND', info.name), module))
    return out


def build_parser(command: Optional[str] = None) -> argparse.ArgumentParser:
    """
    Collect the sub-commands of every module in this package.

    With ``command``, only that sub-command gets its full parser (its options may import
    torch or PyBullet for their defaults); the others, from their module's ``HELP``, list
    themselves, so ``lam-ros --help`` imports none of the heavy parts.
    """
    parser = argparse.ArgumentParser(
        prog='lam-ros',
        description='Record demonstrations, train and evaluate manipulation policies.')
    subparsers = parser.add_subparsers(dest='command', metavar='COMMAND')
    for name, module in _commands():
        summary = getattr(module, 'HELP', None)
        if name == command or summary is None:
            module.register(subparsers)
        else:
            subparsers.add_parser(name, help=summary)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of ``lam-ros``; Ctrl-C outside a command's own handling is one line."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv[:1] if not a.startswith('-')), None)
    try:
        parser = build_parser(command)
        args = parser.parse_args(argv)
        if not getattr(args, 'func', None):
            parser.print_help()
            return 2
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f'{" ".join(filter(None, ("lam-ros", command)))}: interrupted', file=sys.stderr)
        return 130


if __name__ == '__main__':
    sys.exit(main())
