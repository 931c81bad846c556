"""`hub-emo train`: fine-tune a classifier (one stage, or two across domains) per fold."""

from __future__ import annotations

HELP = "fine-tune an emotion classifier on a prepared dataset (strategies, two-stage transfer, folds)"
DESCRIPTION = (
    "Fine-tune an SSL backbone for emotion recognition with transformers.Trainer. Options come "
    "from an optional YAML/JSON CONFIG file, overridden by flags (the same names). Set "
    "--source_domain to train stage 1 on that domain and stage 2 on --domain. Runs under torchrun "
    "or accelerate launch unchanged. Writes results.json, plots and TensorBoard logs to --output_dir."
)


def add_arguments(parser) -> None:
    parser.usage = "hub-emo train [CONFIG] [--OPTION VALUE ...]"
    parser.add_argument("config", nargs="?", help="YAML or JSON file of options (flags override it)")
    # Every TrainArguments option, shown in --help; parsed again by HfArgumentParser in run().
    parser.set_defaults(_accepts_extra=True)
    from hub_emo.training.arguments import TrainArguments
    import dataclasses

    group = parser.add_argument_group("options (also accepted in CONFIG)")
    for f in dataclasses.fields(TrainArguments):
        text = f.metadata.get("help", "")
        default = f.default if f.default is not dataclasses.MISSING else None
        flags = dict.fromkeys([f"--{f.name}", f"--{f.name.replace('_', '-')}"])
        group.add_argument(*flags, dest=f"_opt_{f.name}", metavar="VALUE", nargs="*",
                           help=f"{text} (default: {default})")


def run(args) -> int:
    import json
    import sys

    from hub_emo.training import arguments
    from hub_emo.training.trainer import train

    argv = list(args._extra)
    for key, value in vars(args).items():
        if key.startswith("_opt_") and value is not None:
            argv += [f"--{key[5:]}", *value]
    try:
        options = arguments.parse(args.config, argv)
        results = train(options)
        if options.push_to_hub:
            from hub_emo.hub.publish import push_training_run

            results["pushed"] = push_training_run(results, options.push_to_hub, private=options.hub_private)
    except ValueError as error:  # bad input: found before training starts
        print(f"hub-emo train: {error}", file=sys.stderr)
        return 2
    print(json.dumps({"output_dir": options.output_dir, **results.get("summary", {})}, ensure_ascii=False))
    return 0
