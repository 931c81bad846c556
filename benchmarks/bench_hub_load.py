"""The local Hub under load: 50 downloaders, 4 pushers and a flood of anonymous card checks.

The server runs as its own process on 127.0.0.1 (its defaults, but for ``--max-connections``,
raised to hold every client of this run at once). A probe sends one normal request, the
repo's ``model_info`` (``GET /api/models/<repo>``), every 50 ms through three phases run
side by side in one run: idle; under the flood alone (16 anonymous clients posting 63 KiB
cards to ``/api/validate-yaml`` without pause, as in the hostile round); under the flood
plus 50 downloaders and 4 pushers. Its p50/p99 latency per phase, their ratios to idle, the
server's peak RSS and thread count, and the flood's answers are printed. For comparison, in
the same run, a second server parses as many anonymous cards at once as the flood sends
(``anonymous_at_once=16``, as before the limit): the flood phase is measured on it too. Every download is
checked against the sha256 of what was pushed (at the commit it names): one mismatch fails
the run. Bounded: ``PHASE_SECONDS`` per phase, every socket with a timeout.

    .venv/bin/python benchmarks/bench_hub_load.py
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

PHASE_SECONDS = 15
DOWNLOADERS, PUSHERS, FLOODERS = 50, 4, 16
FILES = 8
TOKEN = "hf_bench_load_token_0123456789abcdef"
SERVER = Path(__file__).resolve().parents[1] / "hub_emo" / "hub" / "server.py"
sys.path.insert(0, str(SERVER.parents[2] / "tests"))
from raw_http import free_port  # noqa: E402

REPO = "bench/load"
CARD = json.dumps({"content": "---\nk: [" + ", ".join(["[1, 2, {a: b}]"] * 4000) + "]\n---\n", "repoType": "model"}).encode()


class Run:
    """What the clients of one phase saw; ``stop`` ends the phase."""

    def __init__(self, port: int):
        self.port, self.stop, self.lock = port, threading.Event(), threading.Lock()
        self.latencies: list[float] = []
        self.counts: Counter = Counter()
        self.errors: list[str] = []

    def count(self, key: str, error: str | None = None) -> None:
        with self.lock:
            self.counts[key] += 1
            if error is not None and len(self.errors) < 10:
                self.errors.append(error)

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)


def probe(run: Run) -> None:
    conn = run.connection()
    while not run.stop.wait(0.05):
        start = time.perf_counter()
        try:
            conn.request("GET", f"/api/models/{REPO}")
            response = conn.getresponse()
            response.read()
            ok = response.status == 200
        except OSError as error:
            ok, conn = False, run.connection()
            run.count("probe error", repr(error))
        if ok:
            with run.lock:
                run.latencies.append(time.perf_counter() - start)
        else:
            run.count("probe failed")


def flood(run: Run) -> None:
    while not run.stop.is_set():
        conn = run.connection()
        try:
            conn.request("POST", "/api/validate-yaml", CARD, {"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            run.count(f"flood {response.status}")
        except OSError as error:
            run.count("flood error", repr(error))
        finally:
            conn.close()


def download(run: Run, files: dict[str, tuple[str, str]]) -> None:
    """Files at the commits they were pushed at; each must match its sha256."""
    conn, rng = run.connection(), random.Random(threading.get_ident())
    while not run.stop.is_set():
        path = rng.choice(sorted(files))
        commit, sha256 = files[path]
        try:
            conn.request("GET", f"/{REPO}/resolve/{commit}/{path}")
            response = conn.getresponse()
            data = response.read()
        except OSError as error:
            run.count("download error", repr(error))
            conn = run.connection()
            continue
        if response.status != 200 or hashlib.sha256(data).hexdigest() != sha256:
            run.count("download MISMATCH", f"{path}@{commit}: {response.status}")
        else:
            run.count("download ok")


def push(run: Run, api, files: dict, worker: int) -> None:
    rng = random.Random(worker)
    while not run.stop.is_set():
        data = b"\0" + rng.randbytes(rng.randrange(200_000, 2_000_000))
        path = f"pushed/{worker}-{run.counts['push ok']}.bin"
        try:
            info = api.upload_file(path_or_fileobj=data, path_in_repo=path, repo_id=REPO)
        except Exception as error:  # noqa: BLE001 - counted and shown, the run goes on
            run.count("push error", repr(error)[:200])
            continue
        with run.lock:
            files[path] = (info.oid, hashlib.sha256(data).hexdigest())
        run.count("push ok")


def sample_server(pid: int, stop: threading.Event, peaks: dict) -> None:
    while not stop.wait(0.2):
        try:
            status = Path(f"/proc/{pid}/status").read_text().splitlines()
        except OSError:
            return
        fields = {line.split(":")[0]: line.split()[1] for line in status if line.startswith(("VmRSS", "VmHWM", "Threads"))}
        peaks["rss_mb"] = max(peaks.get("rss_mb", 0), int(fields["VmRSS"]) / 1024)
        peaks["hwm_mb"] = int(fields["VmHWM"]) / 1024
        peaks["threads"] = max(peaks.get("threads", 0), int(fields["Threads"]))


def phase(name: str, port: int, workers) -> Run:
    run = Run(port)
    threads = [threading.Thread(target=target, args=(run, *args), daemon=True) for target, args in [(probe, ())] + workers(run)]
    for thread in threads:
        thread.start()
    time.sleep(PHASE_SECONDS)
    run.stop.set()
    for thread in threads:
        thread.join(timeout=90)
    alive = sum(thread.is_alive() for thread in threads)
    lat = sorted(run.latencies)
    p50, p99 = (statistics.median(lat), lat[int(0.99 * (len(lat) - 1))]) if lat else (float("nan"),) * 2
    run.p50, run.p99 = p50, p99
    print(f"{name:34s} probe p50 {p50 * 1e3:7.1f} ms  p99 {p99 * 1e3:7.1f} ms  ({len(lat)} requests)  "
          + "  ".join(f"{k}: {v}" for k, v in sorted(run.counts.items())) + (f"  STILL RUNNING: {alive}" if alive else ""))
    for error in run.errors:
        print(f"    {error}")
    return run


START = """
import json, sys
sys.path.insert(0, sys.argv[1])
import server
server.serve(sys.argv[2], port=int(sys.argv[3]), tokens=[sys.argv[4]], **json.loads(sys.argv[5]))
"""


def start(root: Path, port: int, **limits) -> subprocess.Popen:
    """The server in a process of its own, with its default limits but those given."""
    limits.setdefault("max_connections", DOWNLOADERS + PUSHERS * 4 + FLOODERS + 8)
    args = [str(SERVER.parent), str(root), str(port), TOKEN, json.dumps(limits)]
    server = subprocess.Popen([sys.executable, "-c", START, *args], stdout=subprocess.PIPE, text=True)
    server.stdout.readline()
    return server


def seed(port: int) -> tuple[object, dict]:
    from huggingface_hub import HfApi

    api = HfApi(endpoint=f"http://127.0.0.1:{port}", token=TOKEN)
    api.create_repo(REPO)
    rng, files = random.Random(0), {}
    for i in range(FILES):
        data = b"\0" + rng.randbytes(rng.randrange(100_000, 4_000_000))
        files[f"f{i}.bin"] = (api.upload_file(path_or_fileobj=data, path_in_repo=f"f{i}.bin", repo_id=REPO).oid,
                              hashlib.sha256(data).hexdigest())
    return api, files


def unlimited_flood_p99(work: Path) -> float:
    """The flood phase on a server that parses all 16 anonymous cards at once."""
    port = free_port()
    server = start(work / "root-unlimited", port, anonymous_at_once=FLOODERS)
    try:
        seed(port)
        return phase(f"flood, {FLOODERS} parsed at once", port, lambda run: [(flood, ())] * FLOODERS).p99
    finally:
        server.terminate()
        server.wait(timeout=10)


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="hub_emo_bench_load_"))
    os.environ.update(HF_TOKEN=TOKEN, HF_HOME=str(work / "hf_home"), HF_HUB_DISABLE_XET="1",
                      HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_PROGRESS_BARS="1")
    port = free_port()
    server = start(work / "root", port)
    stop_sampling, peaks = threading.Event(), {}
    try:
        api, files = seed(port)
        threading.Thread(target=sample_server, args=(server.pid, stop_sampling, peaks), daemon=True).start()
        print(f"{PHASE_SECONDS} s per phase; load average {os.getloadavg()[0]:.2f} (2 shared cores)")
        idle = phase("idle", port, lambda run: [])
        flooded = phase(f"flood ({FLOODERS} anonymous cards)", port, lambda run: [(flood, ())] * FLOODERS)
        loaded = phase(f"flood + {DOWNLOADERS} down + {PUSHERS} push", port, lambda run: [(flood, ())] * FLOODERS
                       + [(download, (files,))] * DOWNLOADERS + [(push, (api, files, w)) for w in range(PUSHERS)])
        stop_sampling.set()
        unlimited = unlimited_flood_p99(work)
        print(f"p99 ratio to idle: flood {flooded.p99 / idle.p99:.1f}x, flood + load {loaded.p99 / idle.p99:.1f}x, "
              f"flood without the limit {unlimited / idle.p99:.1f}x (limit on / off: {flooded.p99 / unlimited:.2f})")
        print(f"server: peak RSS {peaks.get('hwm_mb', 0):.0f} MB, most threads {peaks.get('threads', 0)}")
        bad = loaded.counts["download MISMATCH"]
        print(f"downloads: {loaded.counts['download ok']} sha256-exact, {bad} mismatched; pushes: {loaded.counts['push ok']}")
        return 1 if bad or not loaded.counts["download ok"] or server.poll() is not None else 0
    finally:
        stop_sampling.set()
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
