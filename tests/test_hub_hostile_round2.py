"""The local Hub against a second hostile round: one anonymous request must not kill it, exhaust
its memory, hold its connections or break a repo for everyone. Driven through raw sockets; a
case that could crash the server runs it in a process of its own.
"""

from __future__ import annotations

import json

import pytest
from huggingface_hub import HfApi
from raw_http import connect, exchange, read_response, serving, serving_process
from test_hub_xet import lz4_frame, shard

TOKEN = "hf_hostile_round2_token_1234567890"
AUTH = f"Authorization: Bearer {TOKEN}\r\n"


@pytest.fixture
def server(tmp_path):
    with serving(tmp_path / "root", TOKEN, "hub-emo/target") as handle:
        yield handle


def post(server, path: str, body: bytes, headers: str = "") -> tuple[int, list[str], bytes]:
    return exchange(server, f"POST {path} HTTP/1.1\r\nHost: x\r\n{headers}Content-Length: {len(body)}\r\n\r\n".encode() + body)


def xet_token(server, repo_id: str = "hub-emo/target") -> str:
    status, _, data = exchange(server, f"GET /api/models/{repo_id}/xet-write-token/main HTTP/1.1\r\nHost: x\r\n{AUTH}\r\n".encode())
    assert status == 200
    return json.loads(data)["accessToken"]


def xet_auth(token: str) -> str:
    return f"Authorization: Bearer {token}\r\n"


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


# -- a memory bomb: xorbs of highly compressible chunks -------------------------------------
def zeros_chunk(size: int = 128 * 1024) -> bytes:
    """One xorb chunk: ``size`` zero bytes as an LZ4 frame of about 530 bytes."""
    match = size - 1 - 5 - 4  # one literal, one match reaching back 1 byte, five final literals
    extension = b"\xff" * ((match - 15) // 255) + bytes([(match - 15) % 255])
    block = b"\x1f\x00\x01\x00" + extension + b"\x50" + b"\0" * 5
    frame = lz4_frame(block)
    return bytes([0]) + len(frame).to_bytes(3, "little") + bytes([1]) + size.to_bytes(3, "little") + frame


def peak_rss_mb(process) -> float:
    status = open(f"/proc/{process.pid}/status").read()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM"))) / 1024


def test_a_xorb_bomb_is_decoded_within_the_declared_sizes_and_in_bounded_memory(tmp_path):
    count, name = 1000, "ab" * 32  # 128 MB of zeros in a xorb of about 0.5 MB
    with serving_process(tmp_path / "root", TOKEN) as server:
        HfApi(endpoint=server.url, token=TOKEN).create_repo("hub-emo/bomb")
        token = xet_token(server, "hub-emo/bomb")
        assert post(server, f"/xet/v1/xorbs/default/{name}", zeros_chunk() * count, xet_auth(token))[0] == 200
        before = peak_rss_mb(server.process)
        lie = shard([([(name, 0, count, 1)], b"\1" * 32)])  # declares 1 byte for 128 MB of chunks
        status, _, data = post(server, "/xet/v1/shards", lie, xet_auth(token))
        assert status == 400 and "hold" in json.loads(data)["error"]
        honest = shard([([(name, 0, count, count * 128 * 1024)], b"\1" * 32)])  # all declared: decoded to disk
        status, _, data = post(server, "/xet/v1/shards", honest, xet_auth(token))
        assert status == 400 and "sha256" in json.loads(data)["error"]
        assert peak_rss_mb(server.process) - before < 48, "decoded chunks were held in memory"
        assert server.process.poll() is None
