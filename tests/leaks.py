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


def repo_leaks(api, repo_id: str, repo_type: str = "model") -> dict[str, list[str]]:
    """{file: leaks} over every text file of a Hub repository (binary files: their readable strings)."""
    out = {}
    for name in api.list_repo_files(repo_id, repo_type=repo_type):
        path = api.hf_hub_download(repo_id, name, repo_type=repo_type)
        data = Path(path).read_bytes()
        text = data.decode("utf-8", errors="replace") if not name.endswith((".safetensors", ".parquet")) else \
            " ".join(s.decode("ascii") for s in re.findall(rb"[ -~]{6,}", data))
        found = leaks(text)
        if found:
            out[name] = sorted(set(found))[:5]
    return out
