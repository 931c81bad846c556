"""`hub-emo app MODEL`: try a model in the browser (hub_emo.app)."""

from __future__ import annotations

import sys

from hub_emo.cli import add_app_model_arguments

HELP = "open a web app on localhost to try a model (upload or record audio, see the emotions)"
DESCRIPTION = (
    "Starts a Gradio app on localhost for MODEL: a model folder, a Hub repo id (HF_ENDPOINT "
    "picks the Hub) or a `hub-emo demo` output folder (its best model, report and example "
    "clips). Nothing is fetched from outside: no analytics, no CDN."
)


def add_arguments(parser) -> None:
    add_app_model_arguments(parser, "to show beside the model")
    parser.add_argument("--port", type=int, default=7860, help="port on localhost (default 7860)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--trust-remote-code", action="store_true", help="load the model's own code")


def run(args) -> int:
    from hub_emo.app.source import resolve

    try:
        source = resolve(args.model, task=args.task, report=args.report, revision=args.revision)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        from hub_emo.app.ui import launch
    except ModuleNotFoundError as error:
        print(f"error: the app needs {error.name}: pip install 'hub_emo[app]'", file=sys.stderr)
        return 2
    try:
        print(f"hub-emo app: loading {source.model}", flush=True)
        launch(source, port=args.port, host=args.host, revision=args.revision, trust_remote_code=args.trust_remote_code)
    except OSError as error:
        print(f"error: cannot start the app for {args.model!r}: {error}", file=sys.stderr)
        return 2
    return 0
