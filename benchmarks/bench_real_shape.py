"""Real-data rehearsal: the README's real-data commands on full-size checkpoints, by Hub id.

A local Hub (started here, in this process) serves ``facebook/wav2vec2-base``,
``facebook/hubert-base-ls960`` and ``m-a-p/MERT-v1-95M`` at their published shape and size
(the published config.json / preprocessor_config.json from tests/fixtures/backbones,
random weights: ~95 M parameters each, pytorch_model.bin where the real repo ships one).
A RAVDESS-layout corpus of generated 48 kHz tones (``--actors``, default one per fold)
stands in for the audio. Then:

1. every ``hub-emo`` command of README.md's "The steps one by one" runs as written, with
   HF_ENDPOINT set, in a scratch folder: ``/data/RAVDESS`` becomes the corpus, training gets
   ``--max_steps`` appended (printed) so that it ends, and the lines that need what is not
   here are skipped and named (other corpora, torchrun, a long-running ``hub serve``).
   ``--demo`` also runs the README's ``hub-emo demo`` command (``--hub`` pointed here).
   Each command's wall time and peak memory (its own process: ``os.wait4``) are printed;
2. feature-extraction throughput of hub_emo (``extract_features``: decode, resample,
   normalise, forward, pool, keep frames; no cache) ÷ a bare
   ``model(input_values, output_hidden_states=True)`` loop over the same clips decoded and
   resampled beforehand, per model, in the same process, interleaved, best of ``--rounds``.
   Goal ≥ 0.9;
3. the projected cost of the full RAVDESS study (2452 clips × 3 models) on this CPU, from
   the measured extraction time per clip-second and one measured LoRA training step at the
   demo's shape (batch 8 × 3 s).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_real_shape.py [--actors 4] [--demo]

``--probe-models mert330=m-a-p/MERT-v1-330M --only prepare probe fad --skip-throughput`` runs
the README's prepare, probe and fad lines with their ``-m`` models replaced (the published
repositories are served at full size for the ids named there).
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from raw_http import free_port  # noqa: E402
TOKEN = "hf_bench_real_shape_0123456789abcdef"
MODELS = ("facebook/wav2vec2-base", "facebook/hubert-base-ls960", "m-a-p/MERT-v1-95M")
RATIO_MODELS = ("facebook/wav2vec2-base", "m-a-p/MERT-v1-95M")
GOAL = 0.9
RAVDESS_CLIPS, RAVDESS_SECONDS = 2452, 3.7  # the full study: speech 1440 + song 1012 clips, ~3.7 s each


def readme_commands(section: str = "### The steps one by one") -> list[str]:
    """The shell commands of the README section's first code block, continuation lines joined."""
    text = (ROOT / "README.md").read_text()
    block = text.split(section, 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [c.strip() for c in re.sub(r"\\\n\s*", " ", block).splitlines() if c.strip() and not c.startswith("#")]


def demo_command() -> str:
    text = (ROOT / "README.md").read_text().split("## On real data and real models", 1)[1]
    block = text.split("```bash", 1)[1].split("```", 1)[0]
    return re.sub(r"\\\n\s*", " ", block).strip()


def run_measured(argv: list[str], cwd: Path, env: dict) -> tuple[int, float, float, str]:
    """(exit code, wall seconds, peak RSS GiB of that process, tail of its output)."""
    log = cwd / f".log-{time.monotonic_ns()}"
    start = time.perf_counter()
    with open(log, "w") as out:
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, wall, usage.ru_maxrss / 2**20, log.read_text()[-1500:]


def with_models(argv: list[str], models: list[str]) -> list[str]:
    """``argv`` with its ``-m NAME=ID`` pairs replaced by ``models`` (probe and fad lines)."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "-m":
            skip = True
        else:
            kept.append(arg)
    return kept[:2] + sum((["-m", m] for m in models), []) + kept[2:]


def adapt(command: str, corpus: Path, steps: int, endpoint: str, models: list[str] | None = None,
          only: list[str] | None = None) -> tuple[list[str] | None, str]:
    """The argv for one README line here, or None with the reason it is skipped."""
    argv = shlex.split(command.split("  #", 1)[0])
    if argv[0] != "hub-emo":
        return None, "not hub-emo (torchrun: several processes)"
    if only and argv[1] not in only:
        return None, f"not among --only {' '.join(only)}"
    if argv[1:3] == ["hub", "serve"]:
        return None, "a long-running server (this script started one)"
    if argv[1] == "prepare" and "ravdess_speech" not in argv:
        return None, "needs corpora that are not here (CREMA-D, TESS, EmoDB)"
    argv = [a.replace("/data/RAVDESS", str(corpus)) for a in argv]
    note = ""
    if models and argv[1] in ("probe", "fad"):
        argv = with_models(argv, models)
        note = f"models replaced: {' '.join(models)}"
    if argv[1] == "train":
        argv += ["--max_steps", str(steps), "--report_to", "none"]
        note = f"appended --max_steps {steps} --report_to none"
    if argv[1] == "demo":
        argv = [a if a != "https://huggingface.co" else endpoint for a in argv]
        argv += ["--max-steps", str(steps)]
        note = f"--hub {endpoint}; appended --max-steps {steps}"
    hub_emo = Path(sys.executable).with_name("hub-emo")
    return [str(hub_emo) if hub_emo.exists() else sys.executable, *([] if hub_emo.exists() else ["-m", "hub_emo"]),
            *argv[1:]], note


def publish_models(work: Path, repo_ids) -> None:
    """Write and upload each repository in a child process: the full-size weights never enter this
    process, so the commands it forks later do not start from their high-water mark."""
    code = ("import sys; sys.path.insert(0, sys.argv[3]); from pathlib import Path; "
            "from real_shapes import publish, write_repo; "
            "publish(sys.argv[1], write_repo(sys.argv[1], Path(sys.argv[2]), size=None))")
    for repo_id in repo_ids:
        folder = work / "repos" / repo_id.replace("/", "__")
        subprocess.run([sys.executable, "-c", code, repo_id, str(folder), str(ROOT / "tests")], check=True)
        sys.stdout.write(f"  published {repo_id} (full size, random weights)\n")


def make_recording(path: Path) -> Path:
    """recording.mp3 (what `hub-emo predict` in the README reads), via ffmpeg when it is there."""
    from corpora import tone

    wav = tone(path.with_suffix(".wav"), "happy", seconds=4.0, sr=44100)
    try:
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(wav), str(path)], check=True)
        return path
    except (OSError, subprocess.CalledProcessError):
        return wav


def throughput(dataset_dir: Path, rounds: int) -> dict[str, tuple[float, float, float]]:
    """Per model: (hub_emo seconds, bare seconds, clip-seconds of audio), best of ``rounds``."""
    import datasets
    import numpy as np
    import torch

    from hub_emo import audio
    from hub_emo.features import extract_features, load_backbone
    from hub_emo.data import load_prepared

    dataset = load_prepared(str(dataset_dir), concatenate=True)
    results = {}
    for repo_id in RATIO_MODELS:
        backbone = load_backbone(repo_id)
        rate = backbone.sampling_rate
        rows = dataset.select_columns(["audio"]).cast_column("audio", datasets.Audio())
        waves = []
        for item in rows:
            samples = item["audio"].get_all_samples()
            waves.append(audio.conform(samples.data.numpy(), int(samples.sample_rate), rate, channels_last=False))
        inputs = [torch.from_numpy(np.ascontiguousarray(w))[None] for w in waves]
        hub_best = bare_best = float("inf")
        for _ in range(rounds):
            start = time.perf_counter()
            with torch.inference_mode():
                for x in inputs:
                    backbone.model(x, output_hidden_states=True)
            bare_best = min(bare_best, time.perf_counter() - start)
            start = time.perf_counter()
            extract_features(backbone, dataset, cache=False, progress=False)
            hub_best = min(hub_best, time.perf_counter() - start)
        results[repo_id] = (hub_best, bare_best, sum(len(w) for w in waves) / rate)
        del backbone
    return results


def lora_step_seconds(repo_id: str = "facebook/wav2vec2-base", batch: int = 8, seconds: float = 3.0) -> float:
    """One AdamW step of the demo's LoRA model at full size (the second of two; the first warms up)."""
    import torch

    from hub_emo.modeling import EmoForAudioClassification

    model = EmoForAudioClassification.from_backbone(repo_id, [str(i) for i in range(6)], adapter="lora").train()
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    x, y = torch.randn(batch, int(seconds * 16000)) * 0.1, torch.randint(0, 6, (batch,))
    took = 0.0
    for _ in range(2):
        start = time.perf_counter()
        model(x, labels=y).loss.backward()
        optimiser.step()
        optimiser.zero_grad()
        took = time.perf_counter() - start
    return took


def parse_options():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--actors", type=int, nargs="*", default=[2, 1, 4, 5], help="RAVDESS actors (default: one per fold)")
    parser.add_argument("--emotions", type=int, nargs="*", default=[1, 3, 4, 5], help="RAVDESS emotion codes")
    parser.add_argument("--seconds", type=float, default=3.5, help="clip length (RAVDESS: ~3.5-4 s)")
    parser.add_argument("--steps", type=int, default=1, help="--max_steps appended to training commands")
    parser.add_argument("--rounds", type=int, default=2, help="throughput rounds (best of)")
    parser.add_argument("--demo", action="store_true", help="also run the README's `hub-emo demo` (long)")
    parser.add_argument("--skip-readme", action="store_true", help="only the throughput and the projection")
    parser.add_argument("--dataset", default=None, help="prepared dataset for the throughput (default: the one "
                                                        "the README's prepare step writes)")
    parser.add_argument("--probe-models", nargs="*", default=None, metavar="NAME=ID",
                        help="replace the -m models of the README's probe and fad lines (IDs served at full size)")
    parser.add_argument("--only", nargs="*", default=None, metavar="COMMAND",
                        help="run only these hub-emo commands of the README (e.g. prepare probe fad)")
    parser.add_argument("--skip-throughput", action="store_true", help="no throughput ratio, no projection")
    return parser.parse_args()


def start_hub(work: Path, served) -> tuple[object, dict]:
    """A local Hub on a free port serving ``served`` at full size, and the environment pointing at it."""
    port = free_port()
    env = {**os.environ, "HF_HOME": str(work / "hf_home"), "HF_ENDPOINT": f"http://127.0.0.1:{port}",
           "HF_TOKEN": TOKEN, "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
           "HUB_EMO_CACHE": str(work / "hub_emo_cache"), "PYTHONPATH": str(ROOT),
           "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_VERBOSITY": "error"}
    os.environ.update(env)  # before any Hugging Face library is imported
    from hub_emo.hub.server import start_server

    server = start_server(root=work / "hub", port=port, tokens=[TOKEN])
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} (1/5/15 min), "
          f"{os.cpu_count()} CPUs; work folder {work}")
    start = time.perf_counter()
    publish_models(work, served)
    print(f"  setup: {time.perf_counter() - start:.0f} s")
    return server, env


def run_readme(options, corpus: Path, scratch: Path, env: dict) -> list[str]:
    """Each README command adapted and measured, one table row each; the labels of those that failed."""
    commands = [] if options.skip_readme else readme_commands()
    if options.demo:
        commands.append(demo_command())
    failed = []
    print("\n| step | wall s | peak GiB | exit | note |\n|---|---:|---:|---:|---|")
    for command in commands:
        argv, note = adapt(command, corpus, options.steps, env["HF_ENDPOINT"], options.probe_models, options.only)
        label = " ".join(shlex.split(command)[:2])
        if argv is None:
            print(f"| {label} | – | – | skipped | {note} |")
            continue
        code, wall, peak, tail = run_measured(argv, scratch, env)
        print(f"| {label} | {wall:.1f} | {peak:.2f} | {code} | {note} |", flush=True)
        if code != 0:
            failed.append(label)
            print(f"    {command}\n    " + tail.replace("\n", "\n    "))
    return failed


def throughput_and_projection(prepared: Path, rounds: int) -> float | None:
    """Print the throughput ratios and the projected study cost; the worst ratio (None: no dataset)."""
    print(f"\nextraction throughput, hub_emo ÷ bare forward loop (same clips, same process, best of {rounds}):")
    if not prepared.exists():
        print("  (no prepared dataset: run without --skip-readme, or give --dataset)")
        return None
    per_clip_second = {}
    worst = float("inf")
    for repo_id, (hub, bare, audio_seconds) in throughput(prepared, rounds).items():
        ratio = bare / hub
        worst = min(worst, ratio)
        per_clip_second[repo_id] = hub / audio_seconds
        print(f"  {repo_id:28s} hub_emo {hub:6.2f} s  bare {bare:6.2f} s  ratio {ratio:.2f}  "
              f"({'meets' if ratio >= GOAL else 'misses'} goal ≥ {GOAL})")
    step = lora_step_seconds()
    w2v = per_clip_second["facebook/wav2vec2-base"]
    extraction = RAVDESS_CLIPS * RAVDESS_SECONDS * (2 * w2v + per_clip_second["m-a-p/MERT-v1-95M"])
    lora_runs = 2 * 3 * 3 * 4  # directions × backbones × stage runs (one-stage + two stages) × folds
    lora = lora_runs * 150 * step  # the demo's 150 steps per stage
    print(f"\nprojected cost of the full RAVDESS study ({RAVDESS_CLIPS} clips × 3 models) on this CPU "
          f"(load {os.getloadavg()[0]:.2f}):")
    print(f"  feature extraction (one cached pass per model, probing + FAD + cached strategies): "
          f"{extraction / 3600:.1f} h")
    print(f"  LoRA fine-tuning, the demo's plan with --test-fold all: {lora_runs} stage runs × 150 steps × "
          f"{step:.1f} s/step (batch 8 × 3 s) = {lora / 3600:.1f} h")
    print("  baseline / weighted_sum train a head on cached features: minutes")
    print(f"  total ≈ {(extraction + lora) / 3600:.0f} h")
    return worst


def main() -> int:
    options = parse_options()
    replaced = {m.split("=", 1)[1] for m in options.probe_models or ()}
    served = sorted(replaced | (set() if options.skip_throughput and replaced else set(MODELS)))
    work = Path(tempfile.mkdtemp(prefix="bench_real_shape_"))
    server, env = start_hub(work, served)
    from corpora import make_ravdess

    corpus = make_ravdess(work / "RAVDESS", actors=options.actors, emotions=options.emotions,
                          seconds=options.seconds, sr=48000)
    print(f"  corpus: {len(list(corpus.rglob('*.wav')))} clips × {options.seconds} s, actors {options.actors}")
    scratch = work / "run"
    scratch.mkdir()
    make_recording(scratch / "recording.mp3")
    failed = run_readme(options, corpus, scratch, env)
    worst = None
    if not options.skip_throughput:
        worst = throughput_and_projection(Path(options.dataset) if options.dataset else scratch / "data" / "ravdess",
                                          options.rounds)
    server.stop()
    print(f"failed steps: {failed}" if failed else "all steps exit 0")
    return 1 if failed or (not options.skip_throughput and (worst is None or worst < GOAL)) else 0


if __name__ == "__main__":
    sys.exit(main())
