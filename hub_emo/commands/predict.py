"""`hub-emo predict MODEL FILE...`: classify audio files with a saved or Hub model."""

from __future__ import annotations

import json

HELP = "classify audio files (any format, rate, channels or length) with a model"


def add_arguments(parser):
    parser.add_argument("model", help="model folder or Hub repo id")
    parser.add_argument("files", nargs="+", metavar="FILE", help="audio files")
    parser.add_argument("--top-k", type=int, default=3, help="classes to show per file (default 3)")
    parser.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    parser.add_argument("--chunk-seconds", type=float, default=10.0, help="chunk length for long audio")
    parser.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit)")
    parser.add_argument("--trust-remote-code", action="store_true", help="load the model's own code")


def run(args) -> int:
    from hub_emo.audio import AudioError
    from hub_emo.cli import FAILURE, complain
    from hub_emo.inference import pipeline
    from hub_emo.modeling.backbones import BackboneOutputError

    try:
        classifier = pipeline(args.model, revision=args.revision, trust_remote_code=args.trust_remote_code)
    except OSError as error:
        raise OSError(f"cannot load model {args.model!r}: {error}") from None
    failed = 0
    if not args.json:
        print(f"{'file':40s}  prediction")
    for path in args.files:
        try:
            scores = classifier(path, top_k=args.top_k, chunk_seconds=args.chunk_seconds)
        except BackboneOutputError as error:  # the model, not the file: no other file would fare better
            complain("predict", error)
            return FAILURE
        except (AudioError, ValueError) as error:
            failed += 1
            complain("predict", error)
            continue
        if args.json:
            print(json.dumps({"file": path, "label": scores[0]["label"], "scores": scores}))
        else:
            shown = ", ".join(f"{s['label']} {s['score']:.2f}" for s in scores)
            print(f"{path:40s}  {shown}")
    return FAILURE if failed else 0
