"""`hub-emo fad`: per-emotion Kernel and Fréchet Audio Distances between speech and music."""

from __future__ import annotations

import sys

from hub_emo.cli import add_common_arguments, common_inputs

HELP = "per-emotion Kernel and Fréchet Audio Distances between speech and music, per model and layer"


def add_arguments(parser) -> None:
    add_common_arguments(parser)
    parser.add_argument("--out", default="fad_report", help="output folder (report.md, CSV/JSON, PNGs)")
    parser.add_argument("--layers", type=int, nargs="*", default=None,
                        help="layers to score (default all; -1 = last)")
    parser.add_argument("--report-layer", type=int, default=None,
                        help="layer of the emotion-bias ranking (default: the last scored)")
    parser.add_argument("--bootstrap", type=int, default=100, help="cluster-bootstrap resamples (0: none)")
    parser.add_argument("--cluster", choices=("performer", "clip"), default="performer",
                        help="bootstrap resampling unit (default: performers, drawn once for speech and music)")
    parser.add_argument("--kad-frames", type=int, default=8,
                        help="frames per clip in the KAD kernel, evenly spaced (0: all)")
    parser.add_argument("--bootstrap-all-layers", action="store_true",
                        help="bootstrap every scored layer (default: the report layer only)")
    parser.add_argument("--confidence", type=float, default=0.95)
    parser.add_argument("--inf-steps", type=int, default=8, help="subset sizes for FAD∞")
    parser.add_argument("--min-clips", type=int, default=2, help="clips an emotion needs in each domain")
    parser.add_argument("--no-within", action="store_true", help="skip distances between emotions within a domain")
    parser.add_argument("--seed", type=int, default=0)


def run(args) -> int:
    """Under torchrun every rank extracts its share; rank 0 alone scores and writes the report."""
    from hub_emo.analysis import run_fad

    backbones, dataset, label_set = common_inputs(args)
    result = run_fad(
        backbones, dataset, label_set, args.layers, args.out, frames_per_clip=max(args.frames_per_clip, 1),
        n_boot=args.bootstrap, confidence=args.confidence, inf_steps=args.inf_steps,
        kad_frames=args.kad_frames, cluster=args.cluster, min_clips=args.min_clips,
        report_layer=args.report_layer, within_domain=not args.no_within,
        bootstrap_all_layers=args.bootstrap_all_layers,
        seed=args.seed, trust_remote_code=args.trust_remote_code, progress=not args.quiet,
    )
    if result is None:  # another rank under torchrun: rank 0 scores and reports
        return 0
    print(result.summary())
    for name, message in result.failed.items():
        print(f"error: model {name} failed (the others' results are written): {message}", file=sys.stderr)
    return 1 if result.failed else 0
