"""`hub-emo pretrain`: pretrain a tiny wav2vec2 stand-in backbone (hub_emo.demo.pretrain)."""

from __future__ import annotations

HELP = "pretrain a tiny wav2vec2-style SSL backbone on a folder of audio"
DESCRIPTION = (
    "Self-supervised pretraining with transformers' Wav2Vec2ForPreTraining (masked "
    "contrastive + diversity loss). The result is a tiny stand-in, not wav2vec2/HuBERT/MERT, "
    "saved as a Wav2Vec2Model folder that AutoModel.from_pretrained loads. Given a corpus "
    "made by `hub-emo synth`, --domain picks its speech or song half."
)


def add_arguments(parser) -> None:
    parser.add_argument("audio", metavar="AUDIO", help="a folder of .wav/.flac files (searched recursively) or a synth corpus")
    parser.add_argument("out_dir", metavar="OUT_DIR", help="folder to save the backbone into")
    parser.add_argument("--domain", choices=("speech", "music"), required=True, help="what the audio is")
    parser.add_argument("--steps", type=int, default=None, help="optimisation steps (default 360; 80 with --quick)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--quick", action="store_true", help="the short run of the 2-minute demo")
    parser.add_argument("--overwrite", action="store_true", help="train again even if the same run is saved")


def run(args) -> int:
    from pathlib import Path

    from hub_emo.demo import pretrain, synth

    audio = args.audio
    if (Path(audio) / synth.METADATA_FILE).is_file():
        audio = synth.corpus_files(audio, args.domain)
    steps = args.steps or pretrain.PRESETS["quick" if args.quick else "default"]["steps"]
    result = pretrain.pretrain_backbone(
        audio, args.out_dir, args.domain, steps=steps, seed=args.seed,
        threads=args.threads, overwrite=args.overwrite,
    )
    print(result.summary())
    print(pretrain.STAND_IN_NOTE)
    return 0
