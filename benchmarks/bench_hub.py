"""Push-then-download of a wav2vec2-base-sized checkpoint through the local Hub ÷ a plain copy.

Goal: ≤ 3. A random ``Wav2Vec2ForSequenceClassification`` with the default (base) config
is saved with safetensors (about 365 MB); it is copied once with ``shutil.copytree`` and
pushed once with ``HfApi.upload_folder`` to a server running as its own process, then
downloaded with ``snapshot_download`` into an empty cache. One run of each, same files,
same disk. Temporary files are removed at the end.

    .venv/bin/python benchmarks/bench_hub.py
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL = 3.0
TOKEN = "hf_bench_token_0123456789abcdef"
SERVER = Path(__file__).resolve().parents[1] / "hub_emo" / "hub" / "server.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="hub_emo_bench_"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    os.environ.update(
        HF_ENDPOINT=url,
        HF_TOKEN=TOKEN,
        HF_HOME=str(work / "hf_home"),
        HF_HUB_DISABLE_XET="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
    )
    server = None
    try:
        import torch
        from transformers import Wav2Vec2Config, Wav2Vec2ForSequenceClassification

        torch.set_num_threads(1)
        source = work / "checkpoint"
        Wav2Vec2ForSequenceClassification(Wav2Vec2Config()).save_pretrained(source, safe_serialization=True)
        size_mb = folder_size(source) / 1e6
        print(f"checkpoint: {size_mb:.0f} MB in {sorted(p.name for p in source.iterdir())}")

        from huggingface_hub import HfApi, snapshot_download

        start = time.perf_counter()
        shutil.copytree(source, work / "copy")
        copy_s = time.perf_counter() - start

        server = subprocess.Popen(
            [sys.executable, str(SERVER), "--root", str(work / "hub_root"), "--port", str(port), "--token", TOKEN],
            stdout=subprocess.PIPE,
            text=True,
        )
        server.stdout.readline()
        api = HfApi()
        start = time.perf_counter()
        api.create_repo("bench/wav2vec2-base-cls")
        api.upload_folder(folder_path=source, repo_id="bench/wav2vec2-base-cls")
        push_s = time.perf_counter() - start
        start = time.perf_counter()
        local = snapshot_download("bench/wav2vec2-base-cls", cache_dir=str(work / "download_cache"))
        download_s = time.perf_counter() - start
        assert folder_size(Path(local)) >= folder_size(source), "download is incomplete"

        start = time.perf_counter()
        for path in source.iterdir():
            with open(path, "rb") as f:
                hashlib.file_digest(f, "sha256")
        hash_s = time.perf_counter() - start

        hub_s = push_s + download_s
        ratio = hub_s / copy_s
        print(f"plain copy:              {copy_s:6.2f} s  ({size_mb / copy_s:.0f} MB/s)")
        print(f"push (create + upload):  {push_s:6.2f} s")
        print(f"download (snapshot):     {download_s:6.2f} s")
        print(f"push + download:         {hub_s:6.2f} s")
        print(f"(one sha256 pass over the files, which the LFS protocol makes the client do: {hash_s:.2f} s)")
        print(f"ratio (push+download) / copy = {ratio:.2f}  (goal <= {GOAL}: {'met' if ratio <= GOAL else 'NOT met'})")
        return 0
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
