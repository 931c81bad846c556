"""`hub-emo push MODEL_DIR REPO_ID`: publish a trained model with its model card."""

from __future__ import annotations

HELP = "push a trained model (or only its LoRA adapter) to the Hub with a model card"


def add_arguments(parser) -> None:
    parser.add_argument("model_dir", help="folder written by save_pretrained / hub-emo train")
    parser.add_argument("repo_id", help="namespace/name on the Hub given by HF_ENDPOINT")
    parser.add_argument("--private", action="store_true", help="create the repo as private")
    parser.add_argument(
        "--adapter-only", action="store_true", help="push only the LoRA adapter and head (peft format)"
    )


def run(args) -> int:
    from hub_emo.hub.publish import push_model

    commit = push_model(args.model_dir, args.repo_id, private=args.private, adapter_only=args.adapter_only)
    print(f"pushed {args.repo_id}: {commit.commit_url}")
    return 0
