"""Goal: `hub-emo demo --quick` <= 90 s and `make demo` <= 5 min on a quiet 2-core machine.

Runs the demo of this working tree (or of ``--this REV``), and with ``--baseline REV`` the
same demo of another revision (revisions are extracted with ``git archive``), side by side: alternately, each in a fresh process with
its own output folder, feature cache and HF home (nothing is reused). Prints each step's
time for both, the ratio this ÷ baseline, the totals and the load average before each run
(on a shared machine read the ratios, not the seconds). Then it compares the outputs
byte for byte, group by group (corpus, prepared dataset, backbones, probing.csv, fad.csv,
the transfer runs' models), so a change meant to be faster can show what it left alone.
The synthesiser does not render every clip identically in every process (one song clip
differed between two runs of one revision), so for a byte-for-byte comparison give both
runs one corpus with ``--corpus DIR`` (a `hub-emo demo` corpus folder, reused as built).

    .venv/bin/python benchmarks/bench_demo.py [--baseline REV] [--this REV] [--default]
                                              [--no-publish] [--corpus DIR] [--rounds 1] [--keep DIR]
                                              [--timeout 1800]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOALS = {"quick": 90.0, "default": 300.0}
DONE = re.compile(r"^\[\d+/\d+\] (\w+) done in ([0-9.]+) s$", re.MULTILINE)
#: Output groups compared byte for byte: name -> glob patterns under the demo's output folder.
OUTPUTS = {
    "corpus": ("corpus/**/*.wav",),
    "dataset": ("dataset/**/*.parquet",),
    "backbones": ("backbones/*/model.safetensors",),
    "probing.csv": ("probing/probing.csv",),
    "fad.csv": ("fad/fad.csv",),
    "models": ("transfer/**/best/model.safetensors", "transfer/**/best/adapter_model.safetensors"),
}


def extract(revision: str, into: Path) -> Path:
    """The tree of ``revision`` (``git archive``) under ``into``."""
    into.mkdir(parents=True, exist_ok=True)
    archive = into / "tree.tar"
    with archive.open("wb") as handle:
        subprocess.run(["git", "archive", revision], cwd=ROOT, stdout=handle, check=True)
    tree = into / "tree"
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    archive.unlink()
    return tree


def run_demo(tree: Path, out: Path, mode: str, publish: bool, timeout: float, corpus: Path | None) -> dict:
    """One demo run of ``tree`` in a fresh process; its step times, total and the load before it."""
    if corpus is not None:
        shutil.copytree(corpus, out / "demo" / "corpus")
    env = dict(os.environ, PYTHONPATH=str(tree), HUB_EMO_CACHE=str(out / "cache"), HF_HOME=str(out / "hf_home"),
               PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "hub_emo", "demo", "--out", str(out / "demo")]
    command += ["--quick"] if mode == "quick" else []
    command += [] if publish else ["--no-publish"]
    load = os.getloadavg()[0]
    started, cpu = time.perf_counter(), _children_cpu()
    try:
        done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as stopped:
        output = stopped.stdout.decode() if isinstance(stopped.stdout, bytes) else stopped.stdout or ""
        return {"steps": _steps(output), "total": None, "load": load, "error": f"stopped after {timeout:.0f} s"}
    run = {"steps": _steps(done.stdout), "total": time.perf_counter() - started, "load": load,
           "load_after": os.getloadavg()[0], "cpu": _children_cpu() - cpu}
    if done.returncode != 0:
        run["error"] = done.stderr[-2000:]
    return run


def _children_cpu() -> float:
    """CPU seconds (user + system) of the finished child processes: steadier than wall time
    on a loaded machine, though contention still inflates it."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _steps(stdout: str) -> dict[str, float]:
    return {name: float(seconds) for name, seconds in DONE.findall(stdout)}


def digests(folder: Path) -> dict[str, dict[str, str]]:
    """Per output group: relative path -> sha256 of the file."""
    found = {}
    for group, patterns in OUTPUTS.items():
        files = sorted({p for pattern in patterns for p in folder.glob(pattern)})
        found[group] = {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    return found


def print_times(runs: dict[str, list[dict]], goal: float) -> None:
    names = list(runs)
    for index in range(len(runs[names[-1]])):
        row = {name: runs[name][index] for name in names}
        loads = ", ".join(f"{n} {r['load']:.1f}" for n, r in row.items())
        print(f"\nround {index + 1}: load average before each run: {loads}")
        for name, run in row.items():
            if "error" in run:
                print(f"  {name} run incomplete: {run['error']}")
        steps = list(row[names[-1]]["steps"]) or list(row[names[0]]["steps"])
        print("  " + f"{'step':<10}" + "".join(f"{n + ' s':>12}" for n in names) + ("   ratio" if len(names) == 2 else ""))
        for step in steps + ["total"]:
            values = [run["total"] if step == "total" else run["steps"].get(step) for run in row.values()]
            cells = "".join(f"{v:12.1f}" if v is not None else f"{'—':>12}" for v in values)
            ratio = f"{values[1] / values[0]:8.2f}" if len(values) == 2 and None not in values and values[0] else ""
            print(f"  {step:<10}{cells}{ratio}")
        cpu = [run.get("cpu") for run in row.values()]
        if None not in cpu:
            ratio = f"{cpu[1] / cpu[0]:8.2f}" if len(cpu) == 2 and cpu[0] else ""
            print(f"  {'cpu':<10}" + "".join(f"{v:12.1f}" for v in cpu) + ratio)
    total = runs[names[-1]][-1]["total"]
    if total is not None:
        print(f"\nthis tree: {total:.0f} s; goal {goal:.0f} s on a quiet machine "
              f"({'met here' if total <= goal else 'not met at this load'})")


def print_identity(baseline: dict, current: dict) -> None:
    print("\noutputs, this tree vs baseline:")
    for group in OUTPUTS:
        a, b = baseline[group], current[group]
        if not a and not b:
            verdict = "none in either run"
        elif a == b:
            verdict = f"byte-identical ({len(a)} files)"
        else:
            same = sum(1 for k in a if b.get(k) == a[k])
            verdict = f"differ ({same} of {len(a)} baseline files identical; {len(b)} files here)"
        print(f"  {group:<12} {verdict}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", metavar="REV", help="also run this revision's demo, alternating with this tree's")
    parser.add_argument("--this", metavar="REV", help="run this revision instead of the working tree")
    parser.add_argument("--default", action="store_true", help="the full demo (make demo), not --quick")
    parser.add_argument("--no-publish", action="store_true", help="skip the Hub step")
    parser.add_argument("--corpus", type=Path, help="give every run a copy of this corpus folder")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="keep the runs' output folders here")
    parser.add_argument("--timeout", type=float, default=1800.0, help="stop one run after this many seconds")
    options = parser.parse_args()
    mode = "default" if options.default else "quick"
    work = Path(tempfile.mkdtemp(prefix="bench_demo_"))
    try:
        trees = {}
        if options.baseline:
            trees["baseline"] = extract(options.baseline, work / "baseline")
        trees["this"] = extract(options.this, work / "this") if options.this else ROOT
        runs: dict[str, list[dict]] = {name: [] for name in trees}
        outs: dict[str, Path] = {}
        print(f"demo {'--quick ' if mode == 'quick' else ''}{'--no-publish' if options.no_publish else ''}"
              f"; {os.cpu_count()} CPUs; baseline {options.baseline or '(none)'}; this {options.this or 'working tree'}", flush=True)
        for round_ in range(options.rounds):
            for name, tree in trees.items():
                out = work / f"{name}-{round_}"
                runs[name].append(run_demo(tree, out, mode, not options.no_publish, options.timeout, options.corpus))
                outs[name] = out / "demo"
                print(f"  {name} round {round_ + 1}: {runs[name][-1]['total'] or float('nan'):.1f} s", flush=True)
        print_times(runs, GOALS[mode])
        if options.baseline:
            print_identity(digests(outs["baseline"]), digests(outs["this"]))
        if options.keep:
            options.keep.mkdir(parents=True, exist_ok=True)
            for name, out in outs.items():
                shutil.copytree(out, options.keep / name, dirs_exist_ok=True)
        return 0 if all("error" not in r for rs in runs.values() for r in rs) else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
