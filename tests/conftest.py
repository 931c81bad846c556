"""Shared test set-up.

The Hugging Face libraries read their environment at import, so the local Hub's
endpoint, a throw-away HF_HOME and the cache directory are set here, before any test
module imports them. The `hub` fixture then starts a real Hub server on that endpoint.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

#: A token the test Hub accepts; made up for tests, grants nothing anywhere else.
TEST_TOKEN = "hf_hubemo_test_token_0000000000000000"


from raw_http import free_port  # noqa: E402 - found through the path set just above

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="hub_emo_tests_"))
HUB_PORT = free_port()
os.environ.update(
    {
        "HF_HOME": str(_SESSION_DIR / "hf_home"),
        "HF_ENDPOINT": f"http://127.0.0.1:{HUB_PORT}",
        "HF_TOKEN": TEST_TOKEN,
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
        "HUB_EMO_CACHE": str(_SESSION_DIR / "hub_emo_cache"),
        "TOKENIZERS_PARALLELISM": "false",
        "TRANSFORMERS_VERBOSITY": "error",
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
    }
)
for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.pop(var, None)

from hub_emo import threads  # noqa: E402 - the policy `hub-emo` sets, for the tests run in-process

threads.configure()


@pytest.fixture(scope="session")
def hub():
    """A real Hub server on localhost for the whole session (see hub_emo.hub.server)."""
    from hub_emo.hub.server import start_server

    server = start_server(
        root=_SESSION_DIR / "hub_root", host="127.0.0.1", port=HUB_PORT, tokens=[TEST_TOKEN]
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def session_dir() -> Path:
    return _SESSION_DIR


@pytest.fixture(scope="session")
def published_backbones(hub, session_dir) -> dict:
    """Every family at its published shape (reduced in depth/width), random weights, on the local
    Hub under its real id (see tests/real_shapes.py); published once per session."""
    from real_shapes import publish_all

    return publish_all(session_dir / "published_backbones")
