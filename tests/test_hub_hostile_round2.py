"""The local Hub against a second hostile round: one anonymous request must not kill it, exhaust
its memory, hold its connections or break a repo for everyone. Driven through raw sockets; a
case that could crash the server runs it in a process of its own.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import logging
import select
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from huggingface_hub import CommitOperationAdd, HfApi
from raw_http import closed_by_server, connect, exchange, read_response, serving, serving_process, wait_for_connections, wait_until_idle
from test_hub_xet import lz4_frame, shard

from hub_emo.hub.server import MAX_ANONYMOUS_BODY
from hub_emo.hub.xet import MAX_SHARD_TERMS

TOKEN = "hf_hostile_round2_token_1234567890"
AUTH = f"Authorization: Bearer {TOKEN}\r\n"


@pytest.fixture
def server(tmp_path):
    with serving(tmp_path / "root", TOKEN, "hub-emo/target") as handle:
        yield handle


def post(server, path: str, body: bytes, headers: str = "") -> tuple[int, list[str], bytes]:
    return exchange(server, f"POST {path} HTTP/1.1\r\nHost: x\r\n{headers}Content-Length: {len(body)}\r\n\r\n".encode("latin-1") + body)


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


# -- slowloris: a deadline per request, not only per read -------------------------------------
def closed_now(sock) -> bool:
    """The server has closed this connection (EOF or reset waiting to be read)."""
    if not select.select([sock], [], [], 0)[0]:
        return False
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True


def trickle_until_closed(socks, first: bytes, byte: bytes, rounds: int = 100) -> list[bool]:
    """Send ``first`` on each socket, then one ``byte`` every 0.1 s (the per-read timeout never
    fires) for at most ``rounds`` rounds; which sockets the server closed by then."""
    for sock in socks:
        sock.sendall(first)
    closed = [False] * len(socks)
    for _ in range(rounds):
        for i, sock in enumerate(socks):
            if not closed[i]:
                closed[i] = closed_now(sock)
                with contextlib.suppress(OSError):
                    sock.sendall(byte)
        if all(closed):
            break
        time.sleep(0.1)
    return closed


def test_trickled_headers_are_cut_at_the_request_deadline_and_free_their_slots(tmp_path):
    with serving(tmp_path / "root", TOKEN, max_connections=4, request_timeout=0.5) as handle:
        socks = [connect(handle) for _ in range(4)]
        try:
            assert all(trickle_until_closed(socks, b"GET /api/whoami-v2 HTTP/1.1\r\n", b"X"))
        finally:
            for sock in socks:
                sock.close()
        wait_until_idle(handle)
        assert HfApi(endpoint=handle.url, token=TOKEN).whoami()["name"]


def test_a_normal_client_is_served_while_slow_clients_hold_every_slot(tmp_path):
    """At the cap, the connection that has waited longest for its request's headers (over a
    second) is closed to serve a new one, instead of a 503 for as long as the slow ones last."""
    with serving(tmp_path / "root", TOKEN, max_connections=4) as handle:
        slow = [connect(handle) for _ in range(4)]
        try:
            for sock in slow:
                sock.sendall(b"GET /api/whoami-v2 HTTP/1.1\r\n")  # and never the rest
            wait_for_connections(handle, lambda n: n == 4)
            time.sleep(1.5)  # a second and more in their headers: the slow ones may now be evicted
            status, _, data = exchange(handle, f"GET /api/whoami-v2 HTTP/1.1\r\nHost: x\r\n{AUTH}\r\n".encode())
            assert status == 200, data
            assert sum(closed_now(sock) for sock in slow) == 1
        finally:
            for sock in slow:
                sock.close()


def test_a_connection_that_sends_nothing_is_closed_at_the_request_deadline(tmp_path):
    with serving(tmp_path / "root", TOKEN, request_timeout=0.5) as handle, connect(handle, timeout=20) as sock:
        assert closed_by_server(sock)  # after 0.5 s, not after the 60 s per-read timeout


def test_a_trickled_body_gets_a_408_at_its_deadline(tmp_path):
    with serving(tmp_path / "root", TOKEN, request_timeout=0.5) as handle, connect(handle) as sock:
        head = f"POST /api/repos/create HTTP/1.1\r\nHost: x\r\n{AUTH}Content-Length: 1000\r\n\r\n".encode()
        assert trickle_until_closed([sock], head, b" ") == [True]


# -- a flood of anonymous CPU-heavy requests --------------------------------------------------
HEAVY_CARD = "k: [" + ", ".join(["[1, 2, {a: b}]"] * 2500) + "]"  # 36 KB of flow collections


def validate_at_once(server, auth: str, block: str = HEAVY_CARD, clients: int = 8) -> list[tuple[int, list[str]]]:
    """``clients`` card checks sent at the same moment; their statuses and headers."""
    card = card_body(block)
    barrier = threading.Barrier(clients)

    def validate(_) -> tuple[int, list[str]]:
        with connect(server) as sock:
            barrier.wait(timeout=30)
            sock.sendall(f"POST /api/validate-yaml HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: {len(card)}\r\n\r\n".encode() + card)
            return read_response(sock)[:2]

    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(validate, range(clients)))


def test_anonymous_card_checks_run_a_bounded_number_at_once_and_a_flood_gets_503s(tmp_path):
    with serving(tmp_path / "root", TOKEN, anonymous_at_once=1, anonymous_wait=0) as handle:
        anonymous = validate_at_once(handle, "")
        statuses = sorted(status for status, _ in anonymous)
        assert set(statuses) == {200, 503}, statuses
        assert all("Retry-After: 1" in headers for status, headers in anonymous if status == 503)
        assert [status for status, _ in validate_at_once(handle, AUTH)] == [200] * 8  # a token is never limited


def test_a_burst_of_honest_anonymous_card_checks_waits_its_turn(server):
    card = "license: mit\nlanguage: [en, de]\ntags: [audio, emotion]\npipeline_tag: audio-classification"
    assert [status for status, _ in validate_at_once(server, "", card)] == [200] * 8


# -- chunk extensions count against the body limits -------------------------------------------
def test_chunk_extensions_count_against_the_anonymous_body_limit(server):
    chunk = b"1;" + b"e" * 1000 + b"\r\n{\r\n"  # 1 byte of data in 1006 bytes on the wire
    with connect(server) as sock:
        sock.sendall(b"POST /api/models/hub-emo/target/paths-info/main HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        with contextlib.suppress(OSError):  # the server stops reading: a reset may come back
            sock.sendall(chunk * (MAX_ANONYMOUS_BODY // len(chunk) + 64) + b"0\r\n\r\n")
        status, headers, _ = read_response(sock)
    assert status == 413 and "Connection: close" in headers


# -- unauthenticated 500s, lone surrogates, names ending in a line feed ------------------------
@pytest.mark.parametrize("token", ["xet_\xb2_x", "xet_" + "9" * 5000 + "_x", "xet_-1_x", "xet__", "xet_1"])
def test_malformed_xet_tokens_are_a_401_without_a_traceback(server, token, caplog):
    with caplog.at_level(logging.DEBUG, logger="hub_emo.hub.server"):
        status, _, _ = post(server, f"/xet/v1/xorbs/default/{'ab' * 32}", b"x", f"Authorization: Bearer {token}\r\n")
    assert status == 401
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


def commit_body(path: str) -> bytes:
    lines = [{"key": "header", "value": {"summary": "s"}}, {"key": "file", "value": {"path": path, "content": "aGk=", "encoding": "base64"}}]
    return b"\n".join(json.dumps(line).encode() for line in lines)  # json escapes a lone surrogate as \\ud800


@pytest.mark.parametrize("path", ["dir\ud800/f.txt", "f\udfff.txt", "d/\ud83d"])
def test_a_path_that_is_not_valid_utf8_is_refused_and_the_repo_stays_readable(server, path):
    status, _, data = post(server, "/api/models/hub-emo/target/commit/main", commit_body(path), AUTH)
    assert status == 400 and "UTF-8" in json.loads(data)["error"]
    assert post(server, "/api/models/hub-emo/target/commit/main", commit_body("dir/\U0001f600.txt"), AUTH)[0] == 200  # a real emoji is fine
    api = HfApi(endpoint=server.url, token=TOKEN)
    assert sorted(api.list_repo_files("hub-emo/target")) == [".gitattributes", "dir/\U0001f600.txt"]
    status, _, _ = post(server, "/api/models/hub-emo/target/paths-info/main", json.dumps({"paths": [path]}).encode(), "Content-Type: application/json\r\n")
    assert status == 400


@pytest.mark.parametrize(
    "body",
    [{"name": "x", "organization": "api\n"}, {"name": "x", "organization": "datasets\n"}, {"name": "lf\n", "organization": "x"},
     {"name": "x/lf\n"}, {"name": "lf\r"}, {"name": "x\n/lf"}],
)
def test_repo_names_ending_in_a_line_feed_are_refused(server, body):
    status, _, _ = post(server, "/api/repos/create", json.dumps(body).encode(), AUTH)
    assert status == 400
    assert not any(p.name.endswith(("\n", "\r")) for p in (server.root / "repos" / "models").rglob("*"))


def test_branch_and_tag_names_ending_in_a_line_feed_are_refused(server):
    assert post(server, "/api/models/hub-emo/target/branch/dev%0A", b"{}", AUTH)[0] == 400
    assert post(server, "/api/models/hub-emo/target/tag/main", json.dumps({"tag": "v9\n"}).encode(), AUTH)[0] == 400
    refs = HfApi(endpoint=server.url, token=TOKEN).list_repo_refs("hub-emo/target")
    assert [b.name for b in refs.branches] == ["main"] and refs.tags == []


# -- raw bytes in the log ---------------------------------------------------------------------
def test_log_lines_escape_what_a_client_sent(tmp_path, capsys, caplog):
    with serving(tmp_path / "root", TOKEN, verbose=True) as handle, caplog.at_level(logging.DEBUG, logger="hub_emo.hub.server"):
        for line in (b"GET /xet/\x1b[31mred\x9b HTTP/1.1", b"GET /\x1b[2J\x07 HTTP/9.9", b"\x1b]0;title\x07 / HTTP/1.1"):
            with connect(handle) as sock:
                sock.sendall(line + b"\r\nHost: x\r\nConnection: close\r\n\r\n")
                while sock.recv(65536):  # a malformed request line gets an answer without headers
                    pass
    logged = capsys.readouterr().err + "".join(r.getMessage() for r in caplog.records)
    assert "31m" in logged  # the lines were logged ...
    assert not any(c in logged for c in "\x1b\x07\x9b")  # ... with their control characters escaped


# -- Xet tokens die with the hub token that minted them ----------------------------------------
def test_a_xet_token_dies_with_the_hub_token_that_minted_it(tmp_path):
    root, rotated = tmp_path / "root", "hf_rotated_token_0987654321"
    xorb = f"/xet/v1/xorbs/default/{'ab' * 32}"
    with serving(root, TOKEN, "hub-emo/target") as first:
        old = xet_token(first)
        assert post(first, xorb, b"\0" * 8, xet_auth(old))[0] == 200
    with serving(root, rotated) as second:  # same root and upload secret, the hub token rotated
        status, _, data = post(second, xorb.replace("ab", "cd"), b"\0" * 8, xet_auth(old))
        assert status == 401, data
        status, _, data = exchange(second, f"GET /api/models/hub-emo/target/xet-write-token/main HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {rotated}\r\n\r\n".encode())
        assert status == 200 and rotated not in data.decode()
        assert post(second, xorb.replace("ab", "cd"), b"\0" * 8, xet_auth(json.loads(data)["accessToken"]))[0] == 200


# -- content-addressed objects, quota, garbage collection --------------------------------------
def xorb_chunk(data: bytes) -> bytes:
    return bytes([0]) + len(data).to_bytes(3, "little") + bytes([0]) + len(data).to_bytes(3, "little") + data


def test_a_xorb_is_never_overwritten(server):
    token, name = xet_token(server), "12" * 32
    status, _, data = post(server, f"/xet/v1/xorbs/default/{name}", xorb_chunk(b"first upload"), xet_auth(token))
    assert status == 200 and json.loads(data) == {"was_inserted": True}
    status, _, data = post(server, f"/xet/v1/xorbs/default/{name}", xorb_chunk(b"a forgery!!!"), xet_auth(token))
    assert status == 200 and json.loads(data) == {"was_inserted": False}
    good = shard([([(name, 0, 1, 12)], hashlib.sha256(b"first upload").digest())])
    assert post(server, "/xet/v1/shards", good, xet_auth(token))[0] == 200


def test_xorbs_beyond_the_quota_get_a_507(tmp_path):
    with serving(tmp_path / "root", TOKEN, "hub-emo/target", xet_quota=3000) as handle:
        token = xet_token(handle)
        assert post(handle, f"/xet/v1/xorbs/default/{'01' * 32}", xorb_chunk(b"a" * 2000), xet_auth(token))[0] == 200
        status, headers, _ = post(handle, f"/xet/v1/xorbs/default/{'02' * 32}", xorb_chunk(b"b" * 2000), xet_auth(token))
        assert status == 507 and "Connection: close" in headers  # refused before its body was read
        assert handle._server.xet.used == 2008


def lfs_upload(server, data: bytes) -> str:
    oid = hashlib.sha256(data).hexdigest()
    batch = json.dumps({"operation": "upload", "objects": [{"oid": oid, "size": len(data)}]}).encode()
    status, _, body = post(server, "/hub-emo/target.git/info/lfs/objects/batch", batch, AUTH)
    href = json.loads(body)["objects"][0]["actions"]["upload"]["href"]
    path = href.split("://x", 1)[1]  # the upload URL names the Host the request gave
    assert exchange(server, f"PUT {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data)[0] == 200
    return oid


def test_unused_xorbs_and_orphan_blobs_are_reclaimed_at_restart(tmp_path):
    root = tmp_path / "root"
    with serving(root, TOKEN, "hub-emo/target") as first:
        token = xet_token(first)
        assert post(first, f"/xet/v1/xorbs/default/{'03' * 32}", xorb_chunk(b"never used"), xet_auth(token))[0] == 200
        orphan = lfs_upload(first, b"\0uploaded, never committed")
        HfApi(endpoint=first.url, token=TOKEN).upload_file(path_or_fileobj=b"\0kept", path_in_repo="k.bin", repo_id="hub-emo/target")
    blobs = {p.name for p in (root / "blobs").rglob("*") if p.is_file()}
    assert orphan in blobs
    old = time.time() - 2 * 24 * 3600
    for path in [*(root / "blobs").rglob("*"), *(root / "xet").rglob("*")]:
        os.utime(path, (old, old))
    with serving(root, TOKEN) as second:
        assert not [p for p in (root / "xet" / "xorbs").rglob("*") if p.is_file()]
        assert {p.name for p in (root / "blobs").rglob("*") if p.is_file()} == blobs - {orphan}
        assert HfApi(endpoint=second.url, token=TOKEN).hf_hub_download("hub-emo/target", "k.bin", cache_dir=tmp_path / "cache")


# -- huge shards and commits --------------------------------------------------------------------
def test_a_shard_of_many_files_reaches_the_disk_with_one_flush_not_an_fsync_each(server, monkeypatch):
    token, name = xet_token(server), "04" * 32
    pieces = [f"file {i:04d}".encode() for i in range(300)]
    assert post(server, f"/xet/v1/xorbs/default/{name}", b"".join(xorb_chunk(p) for p in pieces), xet_auth(token))[0] == 200
    syncs = []
    monkeypatch.setattr(os, "fsync", lambda fd, real=os.fsync: (syncs.append("fsync"), real(fd))[1])
    monkeypatch.setattr(os, "sync", lambda real=os.sync: (syncs.append("sync"), real())[1])
    files = [([(name, i, i + 1, len(p))], hashlib.sha256(p).digest()) for i, p in enumerate(pieces)]
    assert post(server, "/xet/v1/shards", shard(files), xet_auth(token))[0] == 200
    assert all((server.root / "blobs" / hashlib.sha256(p).hexdigest()[:2] / hashlib.sha256(p).hexdigest()).read_bytes() == p for p in pieces)
    assert len(syncs) <= 10, len(syncs)  # was two fsyncs per file


def test_a_shard_with_more_terms_than_a_real_one_needs_is_refused_before_they_are_built(server):
    one = shard([([("05" * 32, 0, 1, 1)], b"\1" * 32)])  # header, file entry, one term, metadata, bookend
    file_entry = one[48:96][:36] + struct.pack("<I", MAX_SHARD_TERMS + 1) + one[48:96][40:]
    many = one[:48] + file_entry + one[96:144] * (MAX_SHARD_TERMS + 1) + one[144:]  # 9.6 MB of terms
    status, _, data = post(server, "/xet/v1/shards", many, xet_auth(xet_token(server)))
    assert status == 400 and "terms" in json.loads(data)["error"]


def test_a_commit_line_too_long_to_parse_in_memory_is_a_413(server):
    lines = [{"key": "header", "value": {"summary": "s"}}, {"key": "file", "value": {"path": "big.txt", "content": "QUFB" * (17 * 1024 * 1024 // 4)}}]
    status, _, data = post(server, "/api/models/hub-emo/target/commit/main", b"\n".join(json.dumps(x).encode() for x in lines), AUTH)
    assert status == 413 and "LFS" in json.loads(data)["error"]
    assert HfApi(endpoint=server.url, token=TOKEN).list_repo_files("hub-emo/target") == [".gitattributes"]


def test_chunks_of_an_expired_xorb_that_went_into_files_are_rebuilt_from_their_blobs(tmp_path):
    root, name = tmp_path / "root", "06" * 32
    used, unused = b"a chunk that went into a file", b"a chunk no file used"
    with serving(root, TOKEN, "hub-emo/target") as first:
        token = xet_token(first)
        assert post(first, f"/xet/v1/xorbs/default/{name}", xorb_chunk(used) + xorb_chunk(unused), xet_auth(token))[0] == 200
        assert post(first, "/xet/v1/shards", shard([([(name, 0, 1, len(used))], hashlib.sha256(used).digest())]), xet_auth(token))[0] == 200
        HfApi(endpoint=first.url, token=TOKEN).create_commit(  # the blob is named by a commit: it stays
            "hub-emo/target", [CommitOperationAdd("f.bin", used)], commit_message="f")
    old = time.time() - 2 * 24 * 3600
    for path in (root / "xet" / "xorbs").rglob("*"):
        os.utime(path, (old, old))
    with serving(root, TOKEN) as second:
        assert not [p for p in (root / "xet" / "xorbs").rglob("*") if p.is_file()]  # expired: one chunk was never used
        token = xet_token(second)
        again = used + used
        status, _, data = post(second, "/xet/v1/shards", shard([([(name, 0, 1, len(used))] * 2, hashlib.sha256(again).digest())]), xet_auth(token))
        assert status == 200, data
        sha = hashlib.sha256(again).hexdigest()
        assert (root / "blobs" / sha[:2] / sha).read_bytes() == again
        status, _, data = post(second, "/xet/v1/shards", shard([([(name, 1, 2, len(unused))], hashlib.sha256(unused).digest())]), xet_auth(token))
        assert status == 400 and "no longer stored" in json.loads(data)["error"]
