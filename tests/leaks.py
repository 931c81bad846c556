"""What a file published to a Hub must not hold: this machine's paths, user name or host name."""

from __future__ import annotations

import getpass
import os
import re
import socket
import tempfile
from pathlib import Path

#: An absolute POSIX path under a folder that only exists on someone's machine.
ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])/(?:home|root|tmp|Users|work|var|private|mnt|scratch|data)/[^\s\"',)]*")


def local_markers() -> list[str]:
    """Strings that identify this machine or user (paths, names), longest first."""
    markers = {str(Path.home()), os.getcwd(), tempfile.gettempdir() + os.sep, str(Path(__file__).resolve().parent)}
    host = socket.gethostname()
    if len(host) >= 4 and host != "localhost":
        markers.add(host)
    user = getpass.getuser()
    markers.update({f"/{user}/", f"{os.sep}home{os.sep}{user}"})
    return sorted((m for m in markers if len(m) > 1), key=len, reverse=True)


def leaks(text: str) -> list[str]:
    """Each local path, user or host name found in ``text``."""
    found = [m.group(0) for m in ABSOLUTE_PATH.finditer(text)]
    found += [marker for marker in local_markers() if marker in text]
    return found


def _parquet_text(path: str) -> str:
    """Every value of a Parquet file as text (bytes by their length): compression would hide them."""
    import json

    import pyarrow.parquet as pq

    table = pq.read_table(path)
    text = json.dumps(table.schema.metadata and {k.decode(): v.decode() for k, v in table.schema.metadata.items()})
    rows = table.to_pylist()
    return text + json.dumps(rows, default=lambda value: f"<{len(value)} bytes>" if isinstance(value, bytes) else str(value))


def repo_leaks(api, repo_id: str, repo_type: str = "model") -> dict[str, list[str]]:
    """{file: leaks} over every file of a Hub repository: text as is, Parquet by its values, other
    binary files by their readable strings."""
    out = {}
    for name in api.list_repo_files(repo_id, repo_type=repo_type):
        path = api.hf_hub_download(repo_id, name, repo_type=repo_type)
        data = Path(path).read_bytes()
        if name.endswith(".parquet"):
            text = _parquet_text(path)
        elif name.endswith(".safetensors"):
            text = " ".join(s.decode("ascii") for s in re.findall(rb"[ -~]{6,}", data))
        else:
            text = data.decode("utf-8", errors="replace")
        found = leaks(text)
        if found:
            out[name] = sorted(set(found))[:5]
    return out
