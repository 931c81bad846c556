"""`hub-emo demo`: the paper's three studies end to end, then the Hub, then a report.

On the embedded default nothing comes from outside: a generated speech + song corpus in
the RAVDESS layout, read by the same loaders as the real corpus; two tiny SSL backbones
pretrained here (one on speech, one on music); a Hub server on localhost. With ``root``
(a real RAVDESS folder) and backbone ids, the same steps run on real data and models.

Every step caches its result under ``out_dir`` (the corpus, backbones, feature cache,
training runs), so a rerun only redoes what changed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

CORPORA = ("ravdess_speech", "ravdess_song")
DIRECTIONS = (
    # task, target domain, source domain: music→speech for SER, speech→music for MER
    ("SER", "speech", "music"),
    ("MER", "music", "speech"),
)
STAND_IN_BACKBONES = {"speech-ssl": "speech", "music-ssl": "music"}


@dataclass
class DemoSettings:
    """What the demo runs; the defaults are the embedded default."""

    out_dir: str = "demo_output"
    quick: bool = False
    seed: int = 0
    root: str | None = None
    backbones: dict[str, str] = field(default_factory=dict)
    trust_remote_code: bool = False
    label_set: str | None = None
    strategies: tuple[str, ...] | None = None
    test_fold: str | None = None
    max_steps: int | None = None
    learning_rate: float | None = None
    hub: str | None = None
    namespace: str = "hub-emo-demo"
    publish: bool = True

    def __post_init__(self):
        preset = PRESETS["quick" if self.quick else "default"]
        for name, value in preset.items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        self.strategies = tuple(self.strategies)


#: The default (`make demo`, about 4–5 minutes on 2 cores) and --quick (about a minute), which
#: differs only in its steps: 20 per stage (evaluated at 10 and 20) instead of 150. The
#: quick stand-in backbones are near chance anyway (the report says so), so fewer steps
#: change the numbers, not what the run shows; transfer is most of the quick run's time.
#: The learning rate is 10x peft-ser's 5e-4 because the demo trains for a few hundred
#: steps, not 30 epochs.
_DEFAULT = dict(
    label_set="ravdess6",
    strategies=("baseline", "weighted_sum", "lora"),
    test_fold="1",
    max_steps=150,
    learning_rate=5e-3,
)
PRESETS = {"default": _DEFAULT, "quick": {**_DEFAULT, "max_steps": 20}}


class Progress:
    """One line per step with its time; each step's own output goes to ``logs/<step>.log``."""

    def __init__(self, steps: list[str], logs: Path, echo: Callable[[str], None] = print):
        self.steps = steps
        self.logs = logs
        self.echo = echo
        self.timings: dict[str, float] = {}

    def run(self, name: str, function, *args, **kwargs):
        index = self.steps.index(name) + 1
        self.logs.mkdir(parents=True, exist_ok=True)
        log = self.logs / f"{name}.log"
        self.echo(f"[{index}/{len(self.steps)}] {name} ...")
        start = time.perf_counter()
        try:
            with log.open("w") as handle, contextlib.redirect_stdout(handle), contextlib.redirect_stderr(handle):
                try:
                    result = function(*args, **kwargs)
                except Exception:
                    traceback.print_exc()
                    raise
        except Exception:
            self.echo(f"[{index}/{len(self.steps)}] {name} failed; its log: {log}")
            raise
        self.timings[name] = time.perf_counter() - start
        self.echo(f"[{index}/{len(self.steps)}] {name} done in {self.timings[name]:.1f} s")
        return result


# ---------------------------------------------------------------------- steps
def make_corpus(settings: DemoSettings, out: Path) -> tuple[Path, dict]:
    if settings.root:
        return Path(settings.root), {"generated": False, "root": settings.root}
    from hub_emo.demo import synth

    preset = synth.PRESETS["quick" if settings.quick else "default"]
    summary = synth.build_corpus(out / "corpus", seed=settings.seed, **preset)
    return out / "corpus", {"generated": True, **summary}


def prepare_dataset(corpus: Path, out: Path):
    from hub_emo.data import prepare_with_report

    prepared = prepare_with_report(list(CORPORA), corpus, out=out / "dataset", overwrite=True)
    return prepared


def pretrain_backbones(settings: DemoSettings, corpus: Path, out: Path) -> dict[str, str]:
    """The backbones to study: the given ones, or two stand-ins pretrained on the corpus's halves.

    The corpus is read by its RAVDESS names, so the stand-ins can also be pretrained on a
    real RAVDESS folder given with ``root``. The stand-ins train side by side, one process
    each on one intra-op thread: a model this small gains little from a second thread, and
    a fixed thread count makes the same weights on every machine (torch's results depend on it).
    """
    if settings.backbones:
        return dict(settings.backbones)
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from dataset_scripts import _ravdess
    from hub_emo.demo import pretrain
    from hub_emo.threads import usable_cores

    steps = pretrain.PRESETS["quick" if settings.quick else "default"]["steps"]
    jobs = {}
    for name, domain in STAND_IN_BACKBONES.items():
        files = [str(path) for path, _ in _ravdess.clips(corpus, domain)]
        if not files:
            raise ValueError(f"{corpus}: no {domain} clips with RAVDESS names to pretrain on")
        jobs[name] = (files, str(out / "backbones" / name), domain, steps, settings.seed,
                      str(out / "logs" / f"pretrain-{name}.log"))
    workers = max(1, min(len(jobs), usable_cores()))
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        done = {name: pool.submit(_pretrain_stand_in, *job) for name, job in jobs.items()}
        return {name: future.result() for name, future in done.items()}


def _pretrain_stand_in(files: list[str], out_dir: str, domain: str, steps: int, seed: int, log: str) -> str:
    """One stand-in, in a worker process, its progress written to ``log``."""
    from hub_emo.demo import pretrain

    Path(log).parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as handle, contextlib.redirect_stdout(handle), contextlib.redirect_stderr(handle):
        return str(pretrain.pretrain_backbone(files, out_dir, domain, steps=steps, seed=seed, threads=1).path)


def probe(settings: DemoSettings, backbones: dict[str, str], dataset, out: Path):
    from hub_emo.analysis import run_probing

    return run_probing(
        backbones,
        dataset,
        settings.label_set,
        out / "probing",
        epochs=30 if settings.quick else 100,
        seed=settings.seed,
        trust_remote_code=settings.trust_remote_code,
    )


def fad(settings: DemoSettings, backbones: dict[str, str], dataset, out: Path):
    from hub_emo.analysis import run_fad

    return run_fad(
        backbones,
        dataset,
        settings.label_set,
        out_dir=out / "fad",
        n_boot=20 if settings.quick else 100,
        seed=settings.seed,
        trust_remote_code=settings.trust_remote_code,
    )


def _run_key(arguments: dict) -> str:
    return hashlib.sha256(json.dumps(arguments, sort_keys=True, default=str).encode()).hexdigest()[:16]


def transfer_runs(settings: DemoSettings, backbones: dict[str, str], dataset, out: Path) -> list[dict]:
    """Single-stage and two-stage (cross-domain) fine-tuning per direction and strategy.

    The backbone for each direction is the one of the target's domain when stand-ins are
    used (speech SSL for SER, music SSL for MER), else every given backbone.
    """
    from hub_emo.progress import bar

    plan = []
    for task, target, source in DIRECTIONS:
        names = [n for n, d in STAND_IN_BACKBONES.items() if d == target and n in backbones] or list(backbones)
        plan += [(task, target, source, b, s, two) for b in names for s in settings.strategies for two in (False, True)]
    rows = []
    with bar(total=len(plan), desc="transfer runs", unit="run") as shown:
        for task, target, source, backbone_name, strategy, two_stage in plan:
            run_dir = out / "transfer" / task / backbone_name / f"{strategy}-{'two' if two_stage else 'one'}-stage"
            arguments = _transfer_arguments(settings, backbones[backbone_name], strategy, target, run_dir)
            if two_stage:
                arguments.update(source_domain=source, source_strategy=strategy)
            results = _cached_or_trained(arguments, dataset, run_dir)
            rows.append(
                {
                    "task": task,
                    "backbone": backbone_name,
                    "strategy": strategy,
                    "stages": f"{source}→{target}" if two_stage else target,
                    "two_stage": two_stage,
                    "accuracy": results["accuracy"],
                    "balanced_accuracy": results["balanced_accuracy"],
                    "macro_f1": results["macro_f1"],
                    "validation": results.get("validation"),
                    "model": results["best_model"],
                }
            )
            shown.update()
    return rows


def _transfer_arguments(settings: DemoSettings, backbone: str, strategy: str, target: str, run_dir: Path) -> dict:
    """`hub_emo.training.train`'s arguments for one single-stage transfer run."""
    return dict(
        backbone=backbone,
        trust_remote_code=settings.trust_remote_code,
        strategy=strategy,
        label_set=settings.label_set,
        drop_unlisted_labels=True,
        domain=target,
        folds=settings.test_fold,
        max_steps=settings.max_steps,
        learning_rate=settings.learning_rate,
        max_seconds=3.0,
        per_device_train_batch_size=8,
        eval_steps=max(10, settings.max_steps // 4),
        early_stopping_patience=0,
        logging_steps=10,
        save_total_limit=1,
        report_to="none",
        seed=settings.seed,
        output_dir=str(run_dir),
    )


def _cached_or_trained(arguments: dict, dataset, run_dir: Path) -> dict:
    """The results of the run in ``run_dir`` if it had these ``arguments``, else of a new one."""
    from hub_emo.training import train

    key = _run_key(arguments)
    cached = run_dir / "results.json"
    results = None
    if cached.is_file() and (run_dir / "demo_key").is_file() and (run_dir / "demo_key").read_text() == key:
        results = json.loads(cached.read_text())
    if results is None:
        results = train(dataset=dataset, **arguments)
        (run_dir / "demo_key").write_text(key)
    return results


def best_models(rows: list[dict]) -> dict[str, dict]:
    """The run to publish per task: the best mean validation score (the runs' metric_for_best_model),
    never a test score; runs without validation rank last."""
    best: dict[str, dict] = {}
    for row in rows:
        score = row.get("validation")
        score = float("-inf") if score is None else score
        if row["task"] not in best or score > best[row["task"]][0]:
            best[row["task"]] = (score, row)
    return {task: row for task, (_, row) in best.items()}


def _hub_env(endpoint: str, token: str | None, home: Path) -> dict:
    env = dict(os.environ)
    env.update(HF_ENDPOINT=endpoint, HF_HUB_DISABLE_XET="1", HF_HUB_DISABLE_TELEMETRY="1", HF_HOME=str(home))
    if token:
        env["HF_TOKEN"] = token
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        env.pop(var, None)
    return env


def _python(code: str, env: dict, what: str) -> dict:
    """Run ``code`` in a fresh interpreter (the HF libraries read HF_ENDPOINT at import)."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


PUSH_CODE = """
import json, sys
from hub_emo.data import push
from hub_emo.hub.publish import push_model
spec = json.loads(sys.argv[1] if len(sys.argv) > 1 else {spec!r})
done = {{"dataset": push(spec["dataset_dir"], spec["dataset_repo"])}}
for task, item in spec["models"].items():
    push_model(item["dir"], item["repo"])
    done[task] = item["repo"]
print(json.dumps(done))
"""

RELOAD_CODE = """
import json
import hub_emo
from datasets import load_dataset
from hub_emo.inference import pipeline
spec = json.loads({spec!r})
data = load_dataset(spec["dataset_repo"], split="train")
out = {{"dataset_rows": len(data), "predictions": {{}}}}
domains = data.features["domain"].names
labels = data.features["label"].names
for task, item in spec["models"].items():
    classifier = pipeline(item["repo"])
    rows, seen = [], set()
    for r in data:  # one clip for each of the first three emotions of the target domain
        if domains[r["domain"]] == item["domain"] and r["label"] not in seen and len(rows) < 3:
            rows.append(r)
            seen.add(r["label"])
    out["predictions"][task] = [
        {{"id": r["id"], "true": labels[r["label"]], "predicted": classifier(r["audio"], top_k=1)[0]}}
        for r in rows
    ]
print(json.dumps(out))
"""


def publish(settings: DemoSettings, out: Path, best: dict[str, dict]) -> dict:
    """Push the dataset and the best model per task; reload both by repo id in a fresh process."""
    server = None
    token = os.environ.get("HF_TOKEN")
    endpoint = settings.hub
    if endpoint is None:
        from hub_emo.hub.server import load_or_create_token, start_server

        token, _ = load_or_create_token(out / "hub")
        server = start_server(out / "hub", port=0)
        endpoint = server.url
    try:
        suffix = "quick" if settings.quick else "default"
        spec = {
            "dataset_dir": str(out / "dataset"),
            "dataset_repo": f"{settings.namespace}/synthetic-emotion-{suffix}"
            if not settings.root
            else f"{settings.namespace}/ravdess-speech-song",
            "models": {
                task: {
                    "dir": row["model"],
                    "repo": f"{settings.namespace}/{task.lower()}-{row['backbone']}-{row['strategy']}-{suffix}",
                    "domain": "speech" if task == "SER" else "music",
                }
                for task, row in best.items()
            },
        }
        env = _hub_env(endpoint, token, out / "hf_home")
        pushed = _python(PUSH_CODE.format(spec=json.dumps(spec)), env, "publishing to the Hub")
        reloaded = _python(RELOAD_CODE.format(spec=json.dumps(spec)), env, "reloading from the Hub")
    finally:
        if server is not None:
            server.stop()
    return {"endpoint": endpoint, "local": server is not None, **spec, "pushed": pushed, **reloaded}


# ---------------------------------------------------------------------- the whole run
def run_demo(settings: DemoSettings | None = None, echo: Callable[[str], None] = print, **options) -> dict:
    """Run every step and write ``report.md``; returns a summary with the report's path."""
    settings = settings or DemoSettings(**options)
    out = Path(settings.out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    steps = ["corpus", "prepare", "pretrain", "probing", "transfer", "fad", "publish", "report"]
    if not settings.publish:
        steps.remove("publish")
    progress = Progress(steps, out / "logs", echo)
    started = time.perf_counter()

    corpus, corpus_info = progress.run("corpus", make_corpus, settings, out)
    prepared = progress.run("prepare", prepare_dataset, corpus, out)
    dataset = prepared.dataset
    backbones = progress.run("pretrain", pretrain_backbones, settings, corpus, out)
    probing = progress.run("probing", probe, settings, backbones, dataset, out)
    transfer = progress.run("transfer", transfer_runs, settings, backbones, dataset, out)
    fad_result = progress.run("fad", fad, settings, backbones, dataset, out)
    best = best_models(transfer)
    hub = progress.run("publish", publish, settings, out, best) if settings.publish else None

    from hub_emo.demo.report import write_report

    report = progress.run(
        "report",
        write_report,
        out,
        settings=asdict(settings),
        corpus=corpus_info,
        prepared=prepared,
        backbones=backbones,
        probing=probing,
        transfer=transfer,
        fad=fad_result,
        hub=hub,
        timings=progress.timings,
    )
    summary = {
        "report": str(report),
        "report_html": str(report.with_suffix(".html")),
        "seconds": round(time.perf_counter() - started, 1),
        "timings": {k: round(v, 1) for k, v in progress.timings.items()},
        "best": {task: {k: row[k] for k in ("backbone", "strategy", "stages", "balanced_accuracy", "model")} for task, row in best.items()},
        "hub": hub,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary
