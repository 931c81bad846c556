"""The local Hub against a second hostile round: one anonymous request must not kill it, exhaust
its memory, hold its connections or break a repo for everyone. Driven through raw sockets; a
case that could crash the server runs it in a process of its own.
"""

from __future__ import annotations

import json

import pytest
from raw_http import connect, exchange, read_response, serving, serving_process

TOKEN = "hf_hostile_round2_token_1234567890"
AUTH = f"Authorization: Bearer {TOKEN}\r\n"


@pytest.fixture
def server(tmp_path):
    with serving(tmp_path / "root", TOKEN, "hub-emo/target") as handle:
        yield handle


def post(server, path: str, body: bytes, headers: str = "") -> tuple[int, list[str], bytes]:
    return exchange(server, f"POST {path} HTTP/1.1\r\nHost: x\r\n{headers}Content-Length: {len(body)}\r\n\r\n".encode() + body)


def card_body(yaml_block: str) -> bytes:
    return json.dumps({"content": f"---\n{yaml_block}\n---\ntext\n", "repoType": "model"}).encode()


# -- a crash: deeply nested YAML ---------------------------------------------------------------
@pytest.mark.parametrize("nested", ["[" * 30_000, "{a: " * 15_000, "- " * 30_000 + "x"])
def test_deeply_nested_yaml_is_refused_and_the_server_lives(tmp_path, nested):
    with serving_process(tmp_path / "root", TOKEN) as server:
        status, _, data = post(server, "/api/validate-yaml", card_body(nested))
        assert server.process.poll() is None, "the server died"
        assert status == 400 and "nested" in json.loads(data)["errors"][0]["message"]
        assert post(server, "/api/validate-yaml", card_body("license: mit"))[0] == 200
