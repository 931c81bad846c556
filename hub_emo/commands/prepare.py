"""`hub-emo prepare NAME [NAME...] --root DIR`: corpora into the shared schema (Parquet + card)."""

from __future__ import annotations

HELP = "prepare emotion corpora into one dataset schema (Parquet shards + dataset card)"
DESCRIPTION = (
    "Read published emotion corpora as unzipped, validate every clip, and write one dataset "
    "in the shared schema: Parquet shards per corpus, README.md with one config per corpus "
    "and per domain, and skipped.tsv (file, reason) for what was left out."
)


def add_arguments(parser):
    from dataset_scripts import CORPORA

    parser.add_argument("names", nargs="+", metavar="NAME", choices=CORPORA,
                        help=f"corpus names: {', '.join(CORPORA)}")
    parser.add_argument("--root", action="append", required=True, metavar="[NAME=]DIR",
                        help="corpus folder, for every corpus, or NAME=DIR per corpus (repeat)")
    parser.add_argument("--out", default=None, help="output folder (written atomically)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    parser.add_argument("--label-set", default=None, help="keep and relabel the rows of this label set")
    parser.add_argument("--push-to-hub", default=None, metavar="REPO_ID", help="upload to this dataset repo")
    parser.add_argument("--private", action="store_true", help="create the Hub repo as private")
    parser.add_argument("--strict", action="store_true", help="fail on the first skipped file")
    parser.add_argument("--num-proc", type=int, default=1, help="processes decoding audio (default 1)")
    parser.add_argument("--option", action="append", default=[], metavar="NAME.KEY=VALUE",
                        help="a corpus option, e.g. emopia.audio_dir=/data/emopia_audio (repeat)")


def _roots(values: list[str], names: list[str]) -> dict:
    from hub_emo.cli import UsageError, named

    roots = named(values, "--root", known=names)
    missing = [n for n in names if n not in roots and None not in roots]
    if missing:
        raise UsageError(f"no --root for {', '.join(missing)}")
    return {n: roots.get(n, roots.get(None)) for n in names}


def _options(values: list[str]) -> dict:
    import yaml

    from hub_emo.cli import UsageError, named

    options: dict = {}
    for key, raw in named(values, "--option").items():
        name, dot, option = key.partition(".")
        if not (dot and option):
            raise UsageError(f"--option {key}={raw} is not NAME.KEY=VALUE")
        options.setdefault(name, {})[option] = yaml.safe_load(raw)
    return options


def run(args) -> int:
    from hub_emo.data import prepare_with_report

    result = prepare_with_report(
        args.names,
        _roots(args.root, args.names),
        out=args.out,
        overwrite=args.overwrite,
        label_set=args.label_set,
        push_to_hub=args.push_to_hub,
        private=args.private,
        strict=args.strict,
        num_proc=args.num_proc,
        corpus_options=_options(args.option),
    )
    print(result.summary())
    return 0
