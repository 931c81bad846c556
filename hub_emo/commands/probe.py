"""`hub-emo probe`: layerwise probing of one or more backbones on a prepared dataset."""

from __future__ import annotations

import sys

from hub_emo.cli import add_common_arguments, common_inputs

HELP = "layerwise probing: which layer of which model carries emotion, per domain"


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

    backbones, dataset, label_set = common_inputs(args)
    result = run_probing(
        backbones, dataset, label_set, args.out, probe=args.probe, layers=args.layers,
        epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, seed=args.seed,
        cross_domain=not args.no_cross_domain, select_by=args.select_by,
        frames_per_clip=args.frames_per_clip, trust_remote_code=args.trust_remote_code,
        progress=not args.quiet,
    )
    if result is None:  # another rank under torchrun: rank 0 probes and reports
        return 0
    print(result.summary())
    for name, message in result.failed.items():
        print(f"error: model {name} failed (the others' results are written): {message}", file=sys.stderr)
    return 1 if result.failed else 0
