"""`hub-emo train`: fine-tune a classifier (one stage, or two across domains) per fold."""

from __future__ import annotations

HELP = "fine-tune an emotion classifier on a prepared dataset (strategies, two-stage transfer, folds)"
DESCRIPTION = (
    "Fine-tune an SSL backbone for emotion recognition with transformers.Trainer. Options are "
    "hub_emo's own plus every transformers.TrainingArguments option (--bf16, --gradient_checkpointing, "
    "--lr_scheduler_type, ...; hub_emo's defaults fill only those left unset). They come from an "
    "optional YAML/JSON CONFIG file, overridden by flags (the same names). Set "
    "--source_domain to train stage 1 on that domain and stage 2 on --domain. Runs under torchrun "
    "or accelerate launch unchanged. Writes results.json, plots and TensorBoard logs to --output_dir."
)


def make_parser(**kwargs):
    from hub_emo.training.arguments import parser

    return parser(**kwargs)


def add_arguments(parser) -> None:
    parser.usage = "hub-emo train [CONFIG] [--OPTION VALUE ...]"
    parser.add_argument("config", nargs="?", metavar="CONFIG", help="YAML or JSON file of these options (flags override it)")


def load_defaults(parser, argv) -> None:
    """CONFIG's values become the defaults, so that flags override them."""
    from hub_emo.cli import UsageError
    from hub_emo.training.arguments import read_config_file

    config = parser.parse_known_args(argv)[0].config
    if config:
        try:
            parser.set_defaults(**read_config_file(config))
        except ValueError as error:
            raise UsageError(error) from None


def run(args) -> int:
    import json

    from hub_emo.cli import UsageError
    from hub_emo.training.arguments import from_namespace
    from hub_emo.training.trainer import train

    try:
        options = from_namespace(args)
    except ValueError as error:
        raise UsageError(error) from None
    results = train(options)
    if options.push_to_hub:
        from hub_emo.hub.publish import push_training_run

        results["pushed"] = push_training_run(results, options.push_to_hub, private=options.hub_private)
    print(json.dumps({"output_dir": options.output_dir, **results.get("summary", {})}, ensure_ascii=False))
    return 0
