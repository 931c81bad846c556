"""`hub-emo`: one command line over every stage.

Each subcommand is a module in `hub_emo.commands` with ``HELP``, ``add_arguments(parser)``
and ``run(args) -> int`` (optionally ``DESCRIPTION``, ``make_parser(**kwargs)`` for a
parser of its own class, and ``load_defaults(parser, argv)`` for defaults read from a file
the command line names). Only the command being run is imported and given its arguments,
and heavy libraries load only inside ``run``, so ``hub-emo --help`` answers at once.

Exit status, for every command: 0 done; 2 a usage error (argparse's, or `UsageError`:
the command line or a config file it names is wrong); 1 a failure (a `ValueError` or
`OSError`: bad data, a missing file, a model that does not load), with one line on stderr,
``hub-emo COMMAND: error: ...``, naming the file or model.

The thread policy (`hub_emo.threads`) is set here, before a command loads torch or numpy.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Callable, Iterable

#: Subcommands, in help order; each is the module of its name under hub_emo.commands.
COMMANDS = ("demo", "synth", "pretrain", "prepare", "train", "probe", "fad", "predict", "push", "app", "space", "hub")

USAGE_ERROR, FAILURE = 2, 1


class UsageError(ValueError):
    """The command line, or a config file it names, is wrong (exit status 2)."""


def complain(command: str, error: BaseException | str) -> None:
    """The one error line every command prints on stderr."""
    print(f"hub-emo {command}: error: {error}", file=sys.stderr)


def named(values: Iterable[str], option: str, *, known: Iterable[str] | None = None,
          default_name: Callable[[str], str] | None = None) -> dict:
    """``NAME=VALUE`` items of a repeatable option, as {name: value}.

    ``known``: only these names count as a NAME (a value such as a folder may contain
    ``=``); an item without one is stored under None. ``default_name(value)`` names an
    item given without a NAME; without it, a NAME is required.
    """
    known = None if known is None else set(known)
    out: dict = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name or (known is not None and name not in known):
            name, value = None, item
        if name is None and default_name is not None:
            name = default_name(value)
        if (name is None and known is None) or not value:
            raise UsageError(f"{option} wants NAME=VALUE, got {item!r}")
        if name in out:
            raise UsageError(f"{option}: {name!r} is given twice" + ("" if name is None else "; give NAME=VALUE"))
        out[name] = value
    return out


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
    parser.add_argument("--trust-remote-code", action="store_true", help="allow model code from a backbone's repo (MERT needs none: it loads natively)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def add_app_model_arguments(parser, report_use: str) -> None:
    """MODEL and what picks it, shared by `app` and `space` (both resolve it with hub_emo.app.source)."""
    parser.add_argument("model", help="model folder, Hub repo id, or a hub-emo demo output folder")
    parser.add_argument("--task", default="SER", choices=["SER", "MER"], help="which demo model (default SER)")
    parser.add_argument("--revision", default=None, help="Hub revision of the model (branch, tag or commit)")
    parser.add_argument("--report", default=None, help=f"a study report (report.html or .md) {report_use}")


def common_inputs(args) -> tuple[dict, object, object]:
    """(backbones by name, dataset, label set) from the parsed arguments."""
    from pathlib import Path

    from hub_emo.data import load_prepared

    backbones = named(args.model, "--model", default_name=lambda source: Path(source.rstrip("/")).name)
    label_set = args.label_set.split(",") if "," in args.label_set else args.label_set
    return backbones, load_prepared(args.dataset, args.config, args.split, concatenate=True), label_set


def _command(name: str):
    return importlib.import_module(f"hub_emo.commands.{name}")


def _available():
    for name in COMMANDS:
        try:
            yield name, _command(name)
        except ModuleNotFoundError as error:
            if error.name != f"hub_emo.commands.{name}":
                raise


def command_parser(name: str, module=None) -> argparse.ArgumentParser:
    """The parser of one subcommand, as `hub-emo NAME --help` shows it."""
    module = module or _command(name)
    options = dict(prog=f"hub-emo {name}", description=getattr(module, "DESCRIPTION", module.HELP))
    make = getattr(module, "make_parser", None)
    parser = make(**options) if make else argparse.ArgumentParser(**options)
    module.add_arguments(parser)
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser: the list of commands (each command's options load with it)."""
    from hub_emo import __version__

    parser = argparse.ArgumentParser(
        prog="hub-emo",
        description="Emotion recognition across speech and music with SSL audio models.",
    )
    parser.add_argument("--version", action="version", version=f"hub_emo {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in _available():
        sub.add_parser(name, help=module.HELP, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    from hub_emo import threads

    threads.configure()  # before any command loads torch or numpy: their runtimes read it once
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        try:
            if not argv or argv[0] not in COMMANDS:
                parser = build_parser()
                parser.parse_args(argv)  # --help, --version, or an unknown command
                parser.print_help(sys.stderr)
                return USAGE_ERROR
            module = _command(argv[0])
            parser = command_parser(argv[0], module)
            if hasattr(module, "load_defaults"):
                module.load_defaults(parser, argv[1:])
            args = parser.parse_args(argv[1:])
        except SystemExit as done:  # argparse: --help/--version (0) or a usage error (2, already printed)
            return done.code if isinstance(done.code, int) else USAGE_ERROR
        return int(module.run(args) or 0)
    except UsageError as error:
        complain(argv[0], error)
        return USAGE_ERROR
    except (ValueError, OSError) as error:
        complain(argv[0], error)
        return FAILURE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
