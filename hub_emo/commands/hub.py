"""`hub-emo hub serve`: run the local Hub (see hub_emo.hub.server)."""

from __future__ import annotations

HELP = "run a local Hugging Face Hub (models and datasets) on this machine"
DESCRIPTION = (
    "Serve a Hub that the real clients use unmodified (with or without hf_xet): set "
    "HF_ENDPOINT to its URL. Without --token, a token is created and stored under --root "
    "(mode 0600); its path is printed, never the token."
)


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="hub_command", metavar="ACTION", required=True)
    serve = sub.add_parser("serve", help="serve the Hub in the foreground", description=DESCRIPTION)
    from hub_emo.hub.server import add_arguments as server_arguments

    server_arguments(serve)


def run(args) -> int:
    from hub_emo.hub.server import limits_from_args, serve

    return serve(args.root, args.host, args.port, args.token, args.verbose, **limits_from_args(args))
