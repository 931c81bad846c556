"""`hub-emo`: one command line over every stage.

Each subcommand is a module in `hub_emo.commands` with ``HELP``, ``add_arguments(parser)``
and ``run(args) -> int``; modules are imported only when listed, and heavy libraries only
inside ``run``, so ``hub-emo --help`` answers at once.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: Subcommand name -> module under hub_emo.commands (listed in help order).
COMMANDS = {
    "demo": "demo",
    "synth": "synth",
    "pretrain": "pretrain",
    "prepare": "prepare",
    "train": "train",
    "probe": "probe",
    "fad": "fad",
    "predict": "predict",
    "push": "push",
    "app": "app",
    "space": "space",
    "hub": "hub",
}


def _available():
    for name, module in COMMANDS.items():
        try:
            yield name, importlib.import_module(f"hub_emo.commands.{module}")
        except ModuleNotFoundError as error:
            if error.name != f"hub_emo.commands.{module}":
                raise


def build_parser() -> argparse.ArgumentParser:
    from hub_emo import __version__

    parser = argparse.ArgumentParser(
        prog="hub-emo",
        description="Emotion recognition across speech and music with SSL audio models.",
    )
    parser.add_argument("--version", action="version", version=f"hub_emo {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in _available():
        command = sub.add_parser(
            name, help=module.HELP, description=getattr(module, "DESCRIPTION", module.HELP)
        )
        module.add_arguments(command)
        command.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if extra and not getattr(args, "_accepts_extra", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args._extra = extra
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
