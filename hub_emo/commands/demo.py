"""`hub-emo demo`: the whole study, end to end (hub_emo.demo.run)."""

from __future__ import annotations

HELP = "run the paper's three studies end to end, publish to a Hub, write a report"
DESCRIPTION = (
    "Offline by default: generates a speech + song emotion corpus in the RAVDESS layout, "
    "pretrains two tiny SSL backbones (speech and music), probes every layer, fine-tunes "
    "across domains (music→speech for SER, speech→music for MER), measures per-emotion FAD, "
    "publishes the dataset and best models to a Hub on localhost and reloads them through "
    "pipeline(). With --root and --backbone it runs on a real corpus and real checkpoints."
)


def add_arguments(parser) -> None:
    parser.add_argument("--out", default="demo_output", help="output folder (default demo_output)")
    parser.add_argument("--quick", action="store_true", help="the one-minute version (smaller corpus, fewer steps)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--root", default=None, help="a real RAVDESS folder (Actor_01 ... Actor_24): skips the synthetic corpus")
    parser.add_argument(
        "--backbone", action="append", default=[], metavar="NAME=ID",
        help="a backbone to study, e.g. wav2vec2=facebook/wav2vec2-base (repeatable): skips pretraining",
    )
    parser.add_argument("--trust-remote-code", action="store_true", help="allow remote-code backbones (MERT)")
    parser.add_argument("--label-set", default=None, help="label set (default ravdess6)")
    parser.add_argument("--strategies", default=None, help="comma list (default baseline,weighted_sum,lora)")
    parser.add_argument("--test-fold", default=None, help="test fold, or 'all' for 4-fold cross-validation (default 1)")
    parser.add_argument("--max-steps", type=int, default=None, help="training steps per stage")
    parser.add_argument("--hub", default=None, help="Hub endpoint to publish to (default: start one on localhost)")
    parser.add_argument("--namespace", default="hub-emo-demo", help="Hub namespace for the repos")
    parser.add_argument("--no-publish", action="store_true", help="skip the Hub step")


def run(args) -> int:
    from hub_emo.cli import named
    from hub_emo.demo.run import DemoSettings, run_demo

    backbones = named(args.backbone, "--backbone")
    settings = DemoSettings(
        out_dir=args.out,
        quick=args.quick,
        seed=args.seed,
        root=args.root,
        backbones=backbones,
        trust_remote_code=args.trust_remote_code,
        label_set=args.label_set,
        strategies=tuple(args.strategies.split(",")) if args.strategies else None,
        test_fold=args.test_fold,
        max_steps=args.max_steps,
        hub=args.hub,
        namespace=args.namespace,
        publish=not args.no_publish,
    )
    summary = run_demo(settings)
    print(f"done in {summary['seconds']:.0f} s; report: {summary['report']}")
    print(f"  as one web page: {summary['report_html']}")
    for task, best in summary["best"].items():
        print(f"  best {task}: {best['strategy']} ({best['stages']}) UA {best['balanced_accuracy']:.3f}")
    return 0
