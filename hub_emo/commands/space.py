"""`hub-emo space MODEL OUT_DIR [--push REPO]`: a Space-ready folder running the app (hub_emo.app.space)."""

from __future__ import annotations

import sys

from hub_emo.cli import add_app_model_arguments

HELP = "write a Hugging Face Space folder (Gradio app) for a model, and optionally push it"
DESCRIPTION = (
    "Writes OUT_DIR with app.py, requirements.txt (the versions tested here), packages.txt, "
    "README.md with the Space metadata (sdk: gradio, the model linked), hub_emo's code, and the "
    "model (when it is a local folder), the study report and example clips. With --push, uploads "
    "it as a Space to the Hub that HF_ENDPOINT names."
)


def add_arguments(parser) -> None:
    add_app_model_arguments(parser, "to include")
    parser.add_argument("out_dir", help="folder to write (must not exist, or be empty)")
    parser.add_argument("--push", metavar="REPO", default=None, help="also push it as the Space namespace/name")
    parser.add_argument("--private", action="store_true", help="create the Space as private")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT_DIR if it is not empty")


def run(args) -> int:
    from hub_emo.app.space import push_space, write_space

    try:
        folder = write_space(
            args.model, args.out_dir, task=args.task, report=args.report,
            revision=args.revision, overwrite=args.overwrite,
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {folder} (run it: cd {folder} && python app.py)")
    if args.push:
        commit = push_space(folder, args.push, private=args.private)
        print(f"pushed Space {args.push}: {commit.commit_url}")
    return 0
