"""Raw HTTP/1.1 over sockets, for tests that must see what a client library would hide:
the exact response headers, whether the server closed its end, whether it still reads.
"""

from __future__ import annotations

import contextlib
import socket
import time
from pathlib import Path


def free_port() -> int:
    """A port nothing listens on now, for a server started in another process."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(root: Path, token: str, repo_id: str | None = None, **options):
    """A local Hub on a free port that accepts ``token`` (``options`` go to `start_server`),
    with the model repo ``repo_id`` created when one is named; stopped on leaving."""
    from huggingface_hub import HfApi

    from hub_emo.hub.server import start_server

    handle = start_server(root, tokens=[token], **options)
    try:
        if repo_id is not None:
            HfApi(endpoint=handle.url, token=token).create_repo(repo_id)
        yield handle
    finally:
        handle.stop()


def connect(server, timeout: float = 30) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=timeout)


def exchange(server, raw: bytes) -> tuple[int, list[str], bytes]:
    """Send ``raw`` on a fresh connection; the response's status, header lines and body."""
    with connect(server) as sock:
        sock.sendall(raw)
        return read_response(sock)


def read_response(sock: socket.socket) -> tuple[int, list[str], bytes]:
    """Status, raw header lines (as sent, CR/LF intact) and body of one response."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a full response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:"))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed in the middle of a response body"
        body += chunk
    return int(lines[0].split()[1]), lines[1:], body


def closed_by_server(sock: socket.socket) -> bool:
    """The server closed its end: reading gives EOF (or a reset), never more data or a wait."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def stops_reading(sock: socket.socket, megabytes: int = 8) -> bool:
    """Sending more after the server's answer fails (its closed socket answers with a reset):
    the server reads none of the megabytes that follow."""
    piece = b"%x\r\n" % 65536 + b"a" * 65536 + b"\r\n"
    try:
        for _ in range(megabytes * 16):
            sock.sendall(piece)
    except (BrokenPipeError, ConnectionResetError):
        return True
    return False


def wait_for_connections(server, done, polls: int = 2000) -> None:
    """Until ``done(number of connections the server serves)``: a condition, polled a bounded
    number of times, not a guess at how long the server takes (a client's kept-alive pool
    counts too)."""
    for _ in range(polls):
        if done(server.active_connections):
            return
        time.sleep(0.005)
    raise AssertionError(f"the server serves {server.active_connections} connection(s)")


def wait_until_idle(server) -> None:
    wait_for_connections(server, lambda n: n == 0)


@contextlib.contextmanager
def serving_process(root: Path, token: str, *options: str):
    """A local Hub in a process of its own (``python -m hub_emo.hub.server``), so that a crash
    shows as a dead process instead of killing pytest; yields an object with ``process``,
    ``port`` and ``url`` (``connect`` and ``exchange`` take it)."""
    import subprocess
    import sys
    import types

    port = free_port()
    command = [sys.executable, "-m", "hub_emo.hub.server", "--root", str(root), "--port", str(port), "--token", token, *options]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(400):  # up to 20 s for the interpreter to start and listen
            if process.poll() is not None:
                raise AssertionError(f"the server exited at start: {process.stderr.read().decode()[-2000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the server did not listen within 20 s")
        yield types.SimpleNamespace(process=process, port=port, url=f"http://127.0.0.1:{port}")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
