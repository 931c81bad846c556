"""`hub-emo probe`: layerwise probing of one or more backbones on a prepared dataset."""

from __future__ import annotations

import sys

HELP = "layerwise probing: which layer of which model carries emotion, per domain"


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


def add_arguments(parser) -> None:
    add_common_arguments(parser)
    parser.add_argument("--out", default="probe_report", help="output folder (report.md, CSV/JSON, PNGs)")
    parser.add_argument("--probe", choices=("mlp", "logistic"), default="mlp",
                        help="mlp: 768→128→16→C (the paper's head); logistic: a linear probe")
    parser.add_argument("--layers", type=int, nargs="*", default=None, help="layers to probe (default all)")
    parser.add_argument("--epochs", type=int, default=100, help="MLP epoch budget (default 100)")
    parser.add_argument("--lr", type=float, default=1e-3, help="MLP Adam learning rate")
    parser.add_argument("--batch-size", type=int, default=32, help="MLP batch size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-cross-domain", action="store_true", help="skip fitting on one domain, scoring the other")
    parser.add_argument("--select-by", choices=("UA", "WA", "macro_F1"), default="UA",
                        help="metric that picks the best layer")


def run(args) -> int:
    from hub_emo.analysis import run_probing

    try:
        backbones, dataset, label_set = common_inputs(args)
        result = run_probing(
            backbones, dataset, label_set, args.out, probe=args.probe, layers=args.layers,
            epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, seed=args.seed,
            cross_domain=not args.no_cross_domain, select_by=args.select_by,
            frames_per_clip=args.frames_per_clip, trust_remote_code=args.trust_remote_code,
            progress=not args.quiet,
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(result.summary())
    for name, message in result.failed.items():
        print(f"error: model {name} failed (the others' results are written): {message}", file=sys.stderr)
    return 1 if result.failed else 0
