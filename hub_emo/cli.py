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


def add_common_arguments(parser) -> None:
    """Inputs shared by `probe` and `fad`: models, dataset, label set, output folder."""
    parser.add_argument("--model", "-m", action="append", required=True, metavar="[NAME=]PATH",
                        help="backbone folder or Hub id (any transformers audio encoder or a hub_emo "
                             "model); repeat for several; NAME defaults to the folder name")
    parser.add_argument("--dataset", "-d", required=True, help="prepared dataset: local folder or Hub repo id")
    parser.add_argument("--config", default=None, help="dataset config (subset) name")
    parser.add_argument("--split", default=None, help="dataset split (default: all splits)")
    parser.add_argument("--label-set", default="ravdess6",
                        help="label set name (see hub_emo.schema.LABEL_SETS) or comma-separated emotions")
    parser.add_argument("--frames-per-clip", type=int, default=32,
                        help="frame-level embeddings kept per clip in the shared feature cache (default 32)")
    parser.add_argument("--trust-remote-code", action="store_true", help="allow model code from the repo (MERT)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def common_inputs(args) -> tuple[dict, object, object]:
    """(backbones by name, dataset, label set) from the parsed arguments."""
    from pathlib import Path

    from hub_emo.data import load_prepared

    backbones = {}
    for spec in args.model:
        name, _, source = spec.rpartition("=")
        name = name or Path(source.rstrip("/")).name
        if name in backbones:
            raise ValueError(f"two models are named {name!r}: give NAME=PATH")
        backbones[name] = source
    label_set = args.label_set.split(",") if "," in args.label_set else args.label_set
    return backbones, load_prepared(args.dataset, args.config, args.split, concatenate=True), label_set


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
