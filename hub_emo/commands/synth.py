"""`hub-emo synth`: generate the demo's speech + song emotion corpus (hub_emo.demo.synth)."""

from __future__ import annotations

HELP = "generate a synthetic speech + song emotion corpus in the RAVDESS layout"
DESCRIPTION = (
    "Speech from espeak-ng and song from MIDI rendered with FluidSynth, with emotional "
    "prosody and musical cues, several synthetic performers, written as RAVDESS names its "
    "files (Actor_XX/03-01-... speech, 03-02-... song) so the ravdess_speech/ravdess_song "
    "loaders read it. Deterministic for a seed; 16-bit mono WAV at 16 kHz."
)


def add_arguments(parser) -> None:
    parser.add_argument("out_dir", metavar="OUT_DIR", help="folder to write the corpus into")
    parser.add_argument("--seed", type=int, default=0, help="generation seed (default 0)")
    parser.add_argument("--actors", type=int, default=None, help="number of performers, 1-24 (default 8; 4 with --quick)")
    parser.add_argument("--repetitions", type=int, choices=(1, 2), default=None, help="repetitions per line (default 2; 1 with --quick)")
    parser.add_argument(
        "--emotions", default=None,
        help="comma-separated emotions (default the six speech and song share; "
        "disgust and surprised are generated for speech only)",
    )
    parser.add_argument("--quick", action="store_true", help="the small corpus of the 2-minute demo")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    parser.add_argument("--overwrite", action="store_true", help="regenerate even if the same corpus is there")
    parser.add_argument("--check", action="store_true", help="also report an actor-independent probe's accuracy vs chance")


def run(args) -> int:
    from hub_emo.demo import synth

    options = dict(synth.PRESETS["quick" if args.quick else "default"])
    if args.actors is not None:
        options["actors"] = args.actors
    if args.repetitions is not None:
        options["repetitions"] = args.repetitions
    if args.emotions:
        options["emotions"] = [e.strip() for e in args.emotions.split(",") if e.strip()]
    summary = synth.build_corpus(
        args.out_dir, seed=args.seed, workers=args.workers, overwrite=args.overwrite, **options
    )
    state = "reused" if summary["reused"] else f"generated in {summary['elapsed_s']:.1f} s"
    print(
        f"{summary['out_dir']}: {summary['clips']} clips ({summary['per_domain']}), "
        f"{summary['seconds_of_audio'] / 60:.1f} min of audio, actors {summary['actors']}, {state}"
    )
    if args.check:
        for domain in summary["per_domain"]:
            probe = synth.probe_learnability(args.out_dir, domain)
            print(f"  {domain}: probe accuracy {probe['accuracy']:.2f} vs chance {probe['chance']:.2f} ({probe['folds']} actor folds)")
    return 0
