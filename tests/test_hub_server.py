"""The local Hub server itself: durability, atomic commits, auth, validation.

Servers here run on their own roots (a separate process where the test kills it), and are
driven with huggingface_hub and, for malformed requests no client would send, http.client.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError
from raw_http import free_port, wait_for_connections, wait_until_idle

from hub_emo.hub.server import start_server

TOKEN = "hf_server_tests_token_1234567890"
SERVER_SCRIPT = Path(__file__).resolve().parents[1] / "hub_emo" / "hub" / "server.py"


@pytest.fixture
def server(tmp_path):
    handle = start_server(tmp_path / "root", tokens=[TOKEN])
    yield handle
    handle.stop()


def api_for(url: str, token=TOKEN) -> HfApi:
    return HfApi(endpoint=url, token=token)


def request(url: str, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request(method, path, body=body, headers={"Authorization": f"Bearer {TOKEN}", **(headers or {})})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response, data


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


class ServerProcess:
    """The server as a separate process (stdlib only: ``python hub_emo/hub/server.py``)."""

    def __init__(self, root: Path, port: int, tokens=(TOKEN,), command=(str(SERVER_SCRIPT),)):
        self.root, self.port, self.tokens, self.command = root, port, tokens, list(command)
        self.url = f"http://127.0.0.1:{port}"
        self.proc = None

    def start(self) -> str:
        args = [sys.executable, *self.command, "--root", str(self.root), "--port", str(self.port)]
        for token in self.tokens:
            args += ["--token", token]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = self.proc.stdout.readline()
        assert "serving" in first, self.proc.stderr.read()
        return first

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def test_server_process_imports_only_the_standard_library(tmp_path):
    """What made a start slow was what it imported: the server (run as a plain script)
    must load nothing outside the standard library, torch and transformers least of all."""
    code = (
        f"import sys; sys.path.insert(0, {str(SERVER_SCRIPT.parent)!r}); at_start = set(sys.modules); "
        "import server; server.make_server(sys.argv[1], port=0, tokens=['t']); "
        "print(' '.join(sorted({m.split('.')[0] for m in set(sys.modules) - at_start})))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True)
    loaded = set(out.stdout.split())
    assert loaded - set(sys.stdlib_module_names) - set(sys.builtin_module_names) == {"server", "rules", "storage", "xet"}


def test_cli_without_tokens_creates_one_0600_and_prints_only_its_path(tmp_path):
    proc = ServerProcess(tmp_path / "root", free_port(), tokens=(), command=("-m", "hub_emo", "hub", "serve"))
    try:
        first = proc.start()
        second = proc.proc.stdout.readline()
        token_file = tmp_path / "root" / "token"
        assert str(token_file) in second
        assert token_file.stat().st_mode & 0o777 == 0o600
        token = token_file.read_text().strip()
        assert token not in first + second
        assert api_for(proc.url, token).whoami()["name"]
        with pytest.raises(HfHubHTTPError) as error:
            api_for(proc.url, "hf_wrong_token_abcdef").create_repo("hub-emo/x")
        assert error.value.response.status_code == 401
        assert "hf_wrong_token_abcdef" not in str(error.value) + error.value.response.text
    finally:
        proc.stop()
    assert token not in proc.proc.stderr.read()


def test_restart_keeps_repos_commits_branches_and_privacy(tmp_path):
    root = tmp_path / "root"
    first = start_server(root, tokens=[TOKEN])
    api = api_for(first.url)
    api.create_repo("hub-emo/durable", private=True)
    c1 = api.upload_file(path_or_fileobj=b"one", path_in_repo="a.txt", repo_id="hub-emo/durable")
    c2 = api.upload_file(path_or_fileobj=os.urandom(2048) + b"\0", path_in_repo="w/b.bin", repo_id="hub-emo/durable")
    api.create_branch("hub-emo/durable", branch="v1", revision=c1.oid)
    api.create_repo("hub-emo/durable-data", repo_type="dataset")
    first.stop()

    second = start_server(root, port=first.port, tokens=[TOKEN])
    try:
        api = api_for(second.url)
        assert api.list_repo_files("hub-emo/durable") == [".gitattributes", "a.txt", "w/b.bin"]
        assert [c.commit_id for c in api.list_repo_commits("hub-emo/durable")][:2] == [c2.oid, c1.oid]
        assert {b.name: b.target_commit for b in api.list_repo_refs("hub-emo/durable").branches} == {
            "main": c2.oid,
            "v1": c1.oid,
        }
        assert api.list_repo_files("hub-emo/durable", revision="v1") == [".gitattributes", "a.txt"]
        assert api.repo_info("hub-emo/durable").private is True
        with pytest.raises(RepositoryNotFoundError):
            api_for(second.url, token=False).repo_info("hub-emo/durable")
        assert api.repo_exists("hub-emo/durable-data", repo_type="dataset")
    finally:
        second.stop()


@pytest.mark.slow  # the client's own retries (1+2+4+8+8 s) run out before it reports the failure
def test_killing_the_server_mid_push_keeps_the_previous_revision_and_retry_succeeds(tmp_path):
    root, port = tmp_path / "root", free_port()
    proc = ServerProcess(root, port)
    proc.start()
    repo = "hub-emo/interrupted"
    try:
        api = api_for(proc.url)
        api.create_repo(repo)
        before = api.upload_file(path_or_fileobj=b'{"v": 1}', path_in_repo="config.json", repo_id=repo).oid
        big = tmp_path / "model.safetensors"
        big.write_bytes(b"\0" * (160 * 1024 * 1024))
        folder = tmp_path / "push"
        folder.mkdir()
        (folder / "config.json").write_text('{"v": 2}')
        os.link(big, folder / "model.safetensors")
        outcome = {}

        def push():
            try:
                outcome["commit"] = api.upload_folder(folder_path=folder, repo_id=repo)
            except Exception as error:  # noqa: BLE001 - the test inspects it
                outcome["error"] = error

        pusher = threading.Thread(target=push)
        pusher.start()
        deadline = time.time() + 60
        while time.time() < deadline and not any(
            p.name.startswith("upload-") and p.stat().st_size > 0 for p in (root / "tmp").iterdir()
        ):
            time.sleep(0.002)
        proc.kill()  # in the middle of the LFS upload
        pusher.join(timeout=120)
        assert "error" in outcome, "the push finished before the server was killed"
        error = outcome["error"]  # the client names the file, and the cause is the lost connection
        assert "model.safetensors" in str(error)
        cause = f"{type(error.__cause__).__name__}: {error.__cause__}".lower()
        assert any(word in cause for word in ("connect", "refused", "disconnect", "reset")), cause

        proc.start()
        assert api.repo_info(repo).sha == before
        assert api.list_repo_files(repo) == [".gitattributes", "config.json"]
        assert not any(p.stat().st_size == big.stat().st_size for p in (root / "blobs").rglob("*") if p.is_file())

        retry = api.upload_folder(folder_path=folder, repo_id=repo)
        assert api.repo_info(repo).sha == retry.oid != before
        assert api.get_paths_info(repo, ["model.safetensors"])[0].size == big.stat().st_size
    finally:
        proc.stop()
        shutil.rmtree(tmp_path, ignore_errors=True)  # 160 MB three times over: free the disk now


def test_client_dying_mid_upload_leaves_no_blob_and_no_commit(server):
    repo = "hub-emo/client-dies"  # set up over connections closed at once: none stays kept alive
    assert request(server.url, "POST", "/api/repos/create", json.dumps({"name": repo}).encode())[0].status == 200
    head = json.loads(request(server.url, "GET", f"/api/models/{repo}")[1])["sha"]
    oid, size = "ab" * 32, 10_000_000
    response, data = request(
        server.url,
        "POST",
        f"/{repo}.git/info/lfs/objects/batch",
        json.dumps({"operation": "upload", "objects": [{"oid": oid, "size": size}]}).encode(),
        {"Content-Type": "application/json"},
    )
    href = json.loads(data)["objects"][0]["actions"]["upload"]["href"]
    path = href.removeprefix(server.url)
    wait_until_idle(server)
    with socket.create_connection(("127.0.0.1", server.port)) as raw:
        raw.sendall(f"PUT {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n\r\n".encode() + b"\1" * 1_000_000)
        wait_for_connections(server, lambda n: n == 1)  # the server has it: the client dies now
    wait_until_idle(server)
    assert not list((server.root / "blobs").rglob(oid))
    assert not [p for p in (server.root / "tmp").iterdir() if p.name.startswith("upload-")]
    assert api_for(server.url).repo_info(repo).sha == head


def test_streamed_blob_is_verified_across_chunks_and_a_wrong_hash_leaves_nothing(tmp_path):
    """Hashing runs in its own thread over rotating buffers: the digest must still cover
    every byte in order (several chunks, an uneven tail), and a mismatch stores nothing."""
    import hashlib
    import io

    from hub_emo.hub.rules import HubError
    from hub_emo.hub.storage import Storage

    storage = Storage(tmp_path / "root")
    data = bytes(range(256)) * 13_000 + b"tail"  # 3.3 MB: four 1-MB chunks, the last partial
    sha = hashlib.sha256(data).hexdigest()
    storage.put_stream(io.BytesIO(data), len(data), sha)
    assert storage.blob_path(sha).read_bytes() == data
    swapped = data[1:] + data[:1]  # same bytes, other order
    with pytest.raises(HubError, match="does not match"):
        storage.put_stream(io.BytesIO(swapped), len(swapped), "cd" * 32)
    assert not storage.has_blob("cd" * 32)
    assert not list(storage.tmp.iterdir())


def test_concurrent_pushes_to_one_repo_all_land(server):
    api = api_for(server.url)
    repo = "hub-emo/concurrent"
    api.create_repo(repo)
    errors = []

    def push(i):
        try:
            content = f"file {i}".encode() if i % 2 else os.urandom(4096) + b"\0"
            api.upload_file(path_or_fileobj=content, path_in_repo=f"f{i}.bin", repo_id=repo)
        except Exception as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=push, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(api.list_repo_files(repo)) == sorted([".gitattributes"] + [f"f{i}.bin" for i in range(8)])
    assert len(api.list_repo_commits(repo)) == 9  # initial commit + one per push, none lost


@pytest.mark.parametrize(
    "bad_path",
    ["../escape.txt", "a/../../escape.txt", "/etc/escape.txt", "a/./b.txt", "nul\x00.txt", ".git/config", "x" * 2000],
)
def test_commit_with_bad_path_is_refused(server, bad_path):
    api = api_for(server.url)
    repo = "hub-emo/paths"
    api.create_repo(repo, exist_ok=True)
    head = api.repo_info(repo).sha
    before = files_under(server.root.parent)
    lines = [
        {"key": "header", "value": {"summary": "evil"}},
        {"key": "file", "value": {"path": bad_path, "content": "aGk=", "encoding": "base64"}},
    ]
    response, data = request(
        server.url,
        "POST",
        f"/api/models/{repo}/commit/main",
        b"\n".join(json.dumps(line).encode() for line in lines),
        {"Content-Type": "application/x-ndjson"},
    )
    assert response.status == 400 and "path" in json.loads(data)["error"].lower()
    assert api.repo_info(repo).sha == head
    assert not any("escape" in p.name for p in files_under(server.root.parent) - before)


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/hub-emo/paths/resolve/main/..%2F..%2F..%2Fetc%2Fpasswd"),
        ("GET", "/hub-emo/paths/resolve/main/%2Fetc%2Fpasswd"),
        ("GET", "/api/models/hub-emo/paths/tree/main/..%2F.."),
        ("GET", "/api/models/..%2F../x"),
        ("GET", "/api/models/hub-emo/..%2F..%2F..%2F..%2Ftmp"),
        ("HEAD", "/%2E%2E/%2E%2E/resolve/main/token"),
        ("GET", "/api/models/hub-emo/paths/revision/..%2F..%2Ftoken"),
        ("POST", "/hub-emo/..%2Fx.git/info/lfs/objects/batch"),
    ],
)
def test_traversal_in_urls_is_refused(server, method, path):
    api_for(server.url).create_repo("hub-emo/paths", exist_ok=True)
    response, data = request(server.url, method, path, b"{}" if method == "POST" else None)
    assert 400 <= response.status < 500
    assert b"root:" not in data and TOKEN.encode() not in data


@pytest.mark.parametrize(
    "method,path,content_type",
    [
        ("POST", "/api/repos/create", "application/json"),
        ("POST", "/api/models/hub-emo/json/preupload/main", "application/json"),
        ("POST", "/hub-emo/json.git/info/lfs/objects/batch", "application/vnd.git-lfs+json"),
        ("POST", "/api/models/hub-emo/json/commit/main", "application/x-ndjson"),
        ("POST", "/api/models/hub-emo/json/branch/dev", "application/json"),
        ("POST", "/api/validate-yaml", "application/json"),
    ],
)
def test_malformed_json_is_a_400(server, method, path, content_type):
    api = api_for(server.url)
    api.create_repo("hub-emo/json", exist_ok=True)
    head = api.repo_info("hub-emo/json").sha
    for body in (b"{not json", b"[1, 2", b'"just a string"', b"\xff\xfe"):
        response, data = request(server.url, method, path, body, {"Content-Type": content_type})
        assert response.status == 400, (path, body, data)
        assert "error" in json.loads(data)
    assert api.repo_info("hub-emo/json").sha == head


def test_writes_need_a_valid_token_and_private_repos_are_invisible(server):
    owner, anonymous = api_for(server.url), api_for(server.url, token=False)
    with pytest.raises(HfHubHTTPError) as error:
        anonymous.create_repo("hub-emo/anon")
    assert error.value.response.status_code == 401
    owner.create_repo("hub-emo/secret", private=True)
    owner.upload_file(path_or_fileobj=b"hidden", path_in_repo="s.txt", repo_id="hub-emo/secret")
    owner.create_repo("hub-emo/public")
    for call in (
        lambda: anonymous.repo_info("hub-emo/secret"),
        lambda: anonymous.list_repo_files("hub-emo/secret"),
        lambda: anonymous.list_repo_commits("hub-emo/secret"),
        lambda: anonymous.get_paths_info("hub-emo/secret", ["s.txt"]),
    ):
        with pytest.raises(RepositoryNotFoundError):
            call()
    response, _ = request(server.url, "GET", "/hub-emo/secret/resolve/main/s.txt", headers={"Authorization": ""})
    assert response.status == 404 and response.getheader("X-Error-Code") == "RepoNotFound"
    with pytest.raises(HfHubHTTPError) as error:
        anonymous.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="hub-emo/public")
    assert error.value.response.status_code == 401
    assert anonymous.list_repo_files("hub-emo/public") == [".gitattributes"]


def test_download_headers_ranges_and_missing_entries(server):
    api = api_for(server.url)
    repo = "hub-emo/headers"
    api.create_repo(repo)
    blob = bytes(range(256)) * 64
    commit = api.upload_file(path_or_fileobj=blob, path_in_repo="d/w.bin", repo_id=repo).oid
    response, data = request(server.url, "HEAD", f"/{repo}/resolve/main/d/w.bin")
    assert response.status == 200 and data == b""
    assert response.getheader("X-Repo-Commit") == commit
    assert response.getheader("Content-Length") == str(len(blob))
    assert response.getheader("X-Linked-Etag").strip('"') == api.get_paths_info(repo, ["d/w.bin"])[0].lfs.sha256
    response, data = request(server.url, "GET", f"/{repo}/resolve/{commit}/d/w.bin", headers={"Range": "bytes=10-19"})
    assert response.status == 206 and data == blob[10:20]
    response, _ = request(server.url, "GET", f"/{repo}/resolve/main/d/w.bin", headers={"Range": f"bytes={len(blob)}-"})
    assert response.status == 416
    response, _ = request(server.url, "GET", f"/{repo}/resolve/main/nope.txt")
    assert response.status == 404 and response.getheader("X-Error-Code") == "EntryNotFound"
    response, _ = request(server.url, "GET", f"/{repo}/resolve/{'0' * 40}/d/w.bin")
    assert response.status == 404 and response.getheader("X-Error-Code") == "RevisionNotFound"
    response, data = request(server.url, "POST", "/api/repos/create", json.dumps({"name": "headers", "organization": "hub-emo"}).encode())
    assert response.status == 409 and json.loads(data)["url"].endswith(f"/{repo}")


def test_tree_listing_paginates(server):
    from huggingface_hub import CommitOperationAdd

    api = api_for(server.url)
    repo = "hub-emo/many"
    api.create_repo(repo)
    ops = [CommitOperationAdd(path_in_repo=f"data/{i:04d}.txt", path_or_fileobj=str(i).encode()) for i in range(1205)]
    api.create_commit(repo, ops, commit_message="many files")
    listed = [f.path for f in api.list_repo_tree(repo, "data")]
    assert len(listed) == 1205 and listed[0] == "data/0000.txt" and listed[-1] == "data/1204.txt"


def test_refused_large_upload_closes_the_connection_and_server_stays_up(server):
    api = api_for(server.url)
    api.create_repo("hub-emo/refused")
    size = 100 * 1024 * 1024
    with socket.create_connection(("127.0.0.1", server.port)) as raw:
        raw.sendall(f"PUT /lfs-upload/{'cd' * 32}?size={size}&expires=9999999999&sig=forged HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n\r\n".encode())
        answer = raw.recv(65536).decode()
    assert answer.startswith("HTTP/1.1 403") and "Connection: close" in answer
    assert api.list_repo_files("hub-emo/refused") == [".gitattributes"]
