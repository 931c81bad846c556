"""Goal: every `hub-emo demo --quick` step that takes >= 5 s quiet takes <= 2.0x as long
beside one CPU-bound process.

One run measures the demo (``--quick --no-publish`` unless ``--publish``) twice, each in a
fresh process with its own output, feature cache and HF home (so nothing is reused):
quiet, then beside ``python -c "while True: pass"``. It prints the per-step times and
ratios, and the load average before each run (the machine may be shared: read the ratios
with it). ``--policy off`` measures without hub_emo's thread policy
(``HUB_EMO_THREAD_POLICY=off``: OpenMP's default spinning), for the before/after figure.
Each demo run is stopped after ``--timeout`` seconds, so the benchmark is bounded; the
steps it finished by then (read from the demo's "[k/n] step done in X s" lines) still count.

    .venv/bin/python benchmarks/bench_contention.py [--policy on|off|both] [--timeout 900]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL = 2.0
MIN_QUIET_S = 5.0
DONE = re.compile(r"^\[\d+/\d+\] (\w+) done in ([0-9.]+) s$", re.MULTILINE)


def run_demo(out: Path, policy: str, busy: bool, timeout: float, publish: bool) -> dict:
    # unbuffered: the step lines of a run stopped at the timeout must not die in a buffer
    env = dict(os.environ, HUB_EMO_CACHE=str(out / "cache"), HF_HOME=str(out / "hf_home"), PYTHONUNBUFFERED="1")
    for name in ("OMP_WAIT_POLICY", "KMP_BLOCKTIME", "HUB_EMO_THREAD_POLICY"):
        env.pop(name, None)
    if policy == "off":
        env["HUB_EMO_THREAD_POLICY"] = "off"
    command = [sys.executable, "-m", "hub_emo", "demo", "--quick", "--out", str(out / "demo")]
    if not publish:
        command.append("--no-publish")
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    load = os.getloadavg()[0]
    started = time.perf_counter()
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as stopped:
        output = stopped.stdout.decode() if isinstance(stopped.stdout, bytes) else stopped.stdout or ""
        return {"timings": _timings(output), "total": None, "load": load,
                "error": f"stopped after {timeout:.0f} s"}
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()
    total = time.perf_counter() - started
    if done.returncode != 0:
        return {"timings": _timings(done.stdout), "total": total, "load": load, "error": done.stderr[-2000:]}
    return {"timings": _timings(done.stdout), "total": total, "load": load}


def _timings(stdout: str) -> dict[str, float]:
    return {name: float(seconds) for name, seconds in DONE.findall(stdout)}


def report(policy: str, quiet: dict, busy: dict) -> bool:
    print(f"\npolicy {policy}: load average before the quiet run {quiet['load']:.1f}, "
          f"before the busy run {busy['load']:.1f}")
    for name, run in (("quiet", quiet), ("busy", busy)):
        if "error" in run:
            print(f"  {name} run incomplete: {run['error']}")
    print(f"  {'step':<10} {'quiet s':>8} {'busy s':>8} {'ratio':>6}")
    ok = "error" not in quiet and "error" not in busy
    for step, seconds in quiet["timings"].items():
        other = busy["timings"].get(step)
        ratio = other / seconds if other is not None and seconds > 0 else float("nan")
        judged = seconds >= MIN_QUIET_S
        verdict = "not reached" if other is None else (
            ("ok" if ratio <= GOAL else "OVER") if judged else "(< 5 s quiet)")
        ok &= (ratio <= GOAL or not judged) and other is not None
        print(f"  {step:<10} {seconds:8.1f} {other if other is not None else float('nan'):8.1f} {ratio:6.2f} {verdict}")
    if quiet["total"] and busy["total"]:
        print(f"  {'total':<10} {quiet['total']:8.1f} {busy['total']:8.1f} {busy['total'] / quiet['total']:6.2f}")
    print(f"  goal (every step >= {MIN_QUIET_S:.0f} s quiet within {GOAL}x): {'met' if ok else 'NOT met'}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--policy", choices=("on", "off", "both"), default="on")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per demo run")
    parser.add_argument("--publish", action="store_true", help="include the Hub step")
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}; load average now: {os.getloadavg()[0]:.1f}")
    policies = ("off", "on") if args.policy == "both" else (args.policy,)
    ok = True
    with tempfile.TemporaryDirectory(prefix="bench_contention_") as scratch:
        for policy in policies:
            quiet = run_demo(Path(scratch, f"{policy}-quiet"), policy, False, args.timeout, args.publish)
            busy = run_demo(Path(scratch, f"{policy}-busy"), policy, True, args.timeout, args.publish)
            ok &= report(policy, quiet, busy)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
