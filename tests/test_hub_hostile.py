"""The local Hub against hostile clients, driven through raw sockets where a
client library would hide what goes over the wire: the server must refuse before it reads,
stop reading what it refused, and never let a client's bytes into its response headers.
"""

from __future__ import annotations

import json
import logging

import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError
from raw_http import closed_by_server, connect, exchange, read_response, serving, stops_reading, wait_until_idle

from hub_emo.hub.server import MAX_ANONYMOUS_BODY, MAX_ANONYMOUS_YAML

TOKEN = "hf_hostile_tests_token_1234567890"
AUTH = f"Authorization: Bearer {TOKEN}\r\n"


@pytest.fixture
def server(tmp_path):
    with serving(tmp_path / "root", TOKEN, "hub-emo/target") as handle:
        yield handle


# -- R1: nothing a client sends reaches the response headers -------------------------------
def test_crlf_in_client_strings_never_starts_a_header(server):
    api = HfApi(endpoint=server.url, token=TOKEN)
    blob = b"\0weights" * 100
    api.upload_file(path_or_fileobj=blob, path_in_repo="w.bin", repo_id="hub-emo/target")
    oid = api.get_paths_info("hub-emo/target", ["w.bin"])[0].lfs.sha256
    for header in (
        {"summary": "x", "parentCommit": "0" * 40 + "\r\nX-Injected: parent"},
        {"summary": "x"},
    ):
        lines = [
            {"key": "header", "value": header},
            {"key": "lfsFile", "value": {"path": "w2.bin", "oid": oid, "size": "1\r\nX-Injected: size\r\n\r\nbody"}},
        ]
        body = b"\n".join(json.dumps(line).encode() for line in lines)
        status, headers, _ = exchange(
            server,
            f"POST /api/models/hub-emo/target/commit/main HTTP/1.1\r\nHost: x\r\n{AUTH}Content-Length: {len(body)}\r\n\r\n".encode() + body,
        )
        assert status == 400
        assert not any(h.lower().startswith("x-injected") for h in headers), headers
    message = next(h for h in headers if h.startswith("X-Error-Message"))
    assert "X-Injected: size" in message  # still said, on the one line where it belongs


def test_folded_host_header_does_not_reach_the_link_header(server):
    from huggingface_hub import CommitOperationAdd

    api = HfApi(endpoint=server.url, token=TOKEN)
    api.create_commit("hub-emo/target", [CommitOperationAdd(f"d/{i:04d}", b"x") for i in range(1001)], commit_message="many")
    status, headers, _ = exchange(
        server, b"GET /api/models/hub-emo/target/tree/main/d HTTP/1.1\r\nHost: evil\r\n X-Injected: fold\r\n\r\n"
    )
    assert status == 200
    link = next(h for h in headers if h.startswith("Link:"))
    assert "evil" not in link and f"127.0.0.1:{server.port}" in link
    assert not any(h.lower().lstrip().startswith("x-injected") for h in headers)


# -- R2: refuse before reading; strict chunked framing -------------------------------------
def test_unauthenticated_chunked_upload_is_refused_and_not_read(server):
    with connect(server) as sock:
        # The first chunk only: sending more before reading the answer would race the server's close.
        sock.sendall(b"POST /api/repos/create HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n" + b"a" * 1024)
        status, headers, _ = read_response(sock)
        assert status == 401 and "Connection: close" in headers
        assert closed_by_server(sock)  # it did not wait for (and read) the rest of the body
        assert stops_reading(sock)


def test_unauthenticated_declared_body_is_refused_and_not_read(server):
    with connect(server) as sock:
        sock.sendall(b"POST /api/repos/create HTTP/1.1\r\nHost: x\r\nContent-Length: 33554432\r\n\r\n" + b"a" * 1024)
        status, headers, _ = read_response(sock)
        assert status == 401 and "Connection: close" in headers
        assert closed_by_server(sock)
        assert stops_reading(sock)


JSON_16_BYTES = b'{"name":"a/bcd"}'


def chunked_create(size_line: bytes) -> bytes:
    return (
        f"POST /api/repos/create HTTP/1.1\r\nHost: x\r\n{AUTH}Transfer-Encoding: chunked\r\n\r\n".encode()
        + size_line + b"\r\n" + JSON_16_BYTES + b"\r\n0\r\n\r\n"
    )


def test_well_formed_chunked_body_is_accepted(server):
    assert exchange(server, chunked_create(b"10"))[0] == 200
    assert exchange(server, chunked_create(b"10;name=value"))[0] == 409  # created just above


@pytest.mark.parametrize("size_line", [b"-5", b"0x10", b"+10", b" 10", b"10 ", b"1_0", b"ffffffffffffffffffff", b""])
def test_malformed_chunk_sizes_are_refused_and_close_the_connection(server, size_line):
    with connect(server) as sock:
        sock.sendall(chunked_create(size_line))
        status, headers, body = read_response(sock)
        assert status == 400 and "chunk" in json.loads(body)["error"]
        assert "Connection: close" in headers and closed_by_server(sock)
    assert not HfApi(endpoint=server.url, token=TOKEN).repo_exists("a/bcd")


def test_chunk_not_followed_by_crlf_and_ambiguous_framing_are_refused(server):
    head = f"POST /api/repos/create HTTP/1.1\r\nHost: x\r\n{AUTH}"
    for raw in (
        f"{head}Transfer-Encoding: chunked\r\n\r\n".encode() + b"10\r\n" + JSON_16_BYTES + b"XX0\r\n\r\n",
        f"{head}Transfer-Encoding: chunked\r\nContent-Length: 16\r\n\r\n".encode() + JSON_16_BYTES,
        f"{head}Transfer-Encoding: gzip, chunked\r\n\r\n".encode(),
        f"{head}Content-Length: 16\r\nContent-Length: 17\r\n\r\n".encode() + JSON_16_BYTES,
        f"{head}Content-Length: +16\r\n\r\n".encode() + JSON_16_BYTES,
    ):
        with connect(server) as sock:
            sock.sendall(raw)
            status, headers, _ = read_response(sock)
            assert status in (400, 501) and "Connection: close" in headers, raw
            assert closed_by_server(sock)
    assert not HfApi(endpoint=server.url, token=TOKEN).repo_exists("a/bcd")


# -- R3: anonymous card validation is bounded ----------------------------------------------
def validate_yaml(server, card: str, token: bool):
    body = json.dumps({"content": card, "repoType": "model"}).encode()
    auth = AUTH if token else ""
    return exchange(server, f"POST /api/validate-yaml HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: {len(body)}\r\n\r\n".encode() + body)


def test_anonymous_validate_yaml_refuses_large_bodies_before_reading(server):
    with connect(server) as sock:  # declares 2 MiB and sends none of it: the answer cannot wait for it
        sock.sendall(f"POST /api/validate-yaml HTTP/1.1\r\nHost: x\r\nContent-Length: {2 * MAX_ANONYMOUS_BODY}\r\n\r\n".encode())
        status, headers, _ = read_response(sock)
        assert status == 413 and "Connection: close" in headers


def test_anonymous_validate_yaml_parses_only_small_blocks(server):
    big = "---\nk: [" + ", ".join(["[1, 2, {a: b}]"] * (MAX_ANONYMOUS_YAML // 10)) + "]\n---\ntext\n"
    assert MAX_ANONYMOUS_YAML < len(big) < MAX_ANONYMOUS_BODY
    status, _, body = validate_yaml(server, big, token=False)
    assert status == 413 and "token" in json.loads(body)["error"]
    assert validate_yaml(server, big, token=True)[0] == 200
    assert validate_yaml(server, "---\nlicense: mit\ntags: [audio]\n---\n# card\n", token=False)[0] == 200
    assert validate_yaml(server, "---\ntags: {a: 1}\n---\n", token=False)[0] == 400


# -- R4: deep JSON is a clean 400 ----------------------------------------------------------
@pytest.mark.parametrize(
    "path",
    [
        "/api/repos/create",
        "/api/models/hub-emo/target/paths-info/main",
        "/api/models/hub-emo/target/preupload/main",
        "/api/models/hub-emo/target/commit/main",
        "/hub-emo/target.git/info/lfs/objects/batch",
        "/api/validate-yaml",
    ],
)
def test_deeply_nested_json_is_a_400_without_a_traceback(server, path, caplog):
    body = b"[" * 100_000
    with caplog.at_level(logging.DEBUG, logger="hub_emo.hub.server"):
        status, _, data = exchange(
            server,
            f"POST {path} HTTP/1.1\r\nHost: x\r\n{AUTH}Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body,
        )
    assert status == 400 and "JSON" in json.loads(data)["error"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


# -- R5: timeouts and a cap on connections -------------------------------------------------
def test_a_short_body_gets_a_408_and_an_idle_connection_is_closed(tmp_path):
    with serving(tmp_path / "root", TOKEN, timeout=0.5) as handle:
        with connect(handle) as sock:
            sock.sendall(f"POST /api/repos/create HTTP/1.1\r\nHost: x\r\n{AUTH}Content-Length: 1000\r\n\r\n".encode() + b'{"name": "x"')
            status, headers, _ = read_response(sock)
            assert status == 408 and "Connection: close" in headers
            assert closed_by_server(sock)
        with connect(handle) as sock:  # says nothing at all
            assert closed_by_server(sock)
        wait_until_idle(handle)


def test_connections_beyond_the_cap_get_a_503_and_the_server_recovers(tmp_path):
    with serving(tmp_path / "root", TOKEN, max_connections=3) as handle:
        idle = [connect(handle) for _ in range(3)]
        for sock in idle:  # in a body's wait, not a request's headers': none may be closed for a new one
            sock.sendall(f"POST /api/repos/create HTTP/1.1\r\nHost: x\r\n{AUTH}Content-Length: 100\r\n\r\n".encode())
        try:
            with connect(handle) as extra:
                status, headers, body = read_response(extra)
                assert status == 503 and "Connection: close" in headers and "Too many connections" in json.loads(body)["error"]
            assert handle.active_connections == 3
            for sock in idle:
                sock.close()
            wait_until_idle(handle)
            assert HfApi(endpoint=handle.url, token=TOKEN).whoami()["name"]
        finally:
            for sock in idle:
                sock.close()


# -- R6: reserved namespaces ---------------------------------------------------------------
@pytest.mark.parametrize("repo_id", ["api/x", "datasets/x", "spaces/x", "models/x", "Models/x", "kernels/x", "buckets/x", "lfs-upload/x"])
def test_repos_cannot_be_created_in_reserved_namespaces(server, repo_id):
    api = HfApi(endpoint=server.url, token=TOKEN)
    with pytest.raises(HfHubHTTPError) as error:
        api.create_repo(repo_id)
    assert error.value.response.status_code == 400 and "reserved" in error.value.response.text
    assert not (server.root / "repos" / "models" / repo_id.split("/")[0]).exists()
    api.create_repo("hub-emo/" + repo_id.replace("/", "-"))  # the same words are fine as a name


def test_anonymous_paths_info_refuses_large_bodies_before_reading(server):
    with connect(server) as sock:
        sock.sendall(f"POST /api/models/hub-emo/target/paths-info/main HTTP/1.1\r\nHost: x\r\nContent-Length: {2 * MAX_ANONYMOUS_BODY}\r\n\r\n".encode())
        status, headers, _ = read_response(sock)
        assert status == 413 and "Connection: close" in headers
