"""A small Hugging Face Hub on localhost, speaking the Hub's HTTP protocol (standard library only).

The real clients (``huggingface_hub``, ``transformers``, ``datasets``, ``peft``) talk to it
unmodified once ``HF_ENDPOINT`` points here: repos are created, uploaded through preupload ->
LFS batch or Xet (:mod:`hub_emo.hub.xet`, what clients with ``hf_xet`` use) -> NDJSON commit,
listed and downloaded with the headers the clients rely on (``X-Repo-Commit``,
``ETag``/``X-Linked-Etag``, sizes, ``X-Error-Code``). Storage and atomicity live in
:mod:`hub_emo.hub.storage`; what a request may name and the errors refusing it, in
:mod:`hub_emo.hub.rules`.

Tokens: writing needs one of the server's tokens; private repos answer 404 without one,
as the Hub does. Tokens are compared in constant time and never logged or echoed.

Hostile clients: a request is refused before its body is read (auth and declared sizes
first) and a refused body is never drained (the connection is closed instead); chunked
framing is parsed strictly, and all its wire bytes count against the body limits; nothing a
client sent reaches a response header or a log line unescaped; JSON and YAML depth, body
sizes, idle sockets (timeouts), each request's time (a deadline for headers and body),
connections (a cap) and anonymous CPU-heavy requests (one at a time) are all bounded.

Run it with ``hub-emo hub serve --root DIR`` or ``python -m hub_emo.hub.server --root DIR``.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import hashlib
import hmac
import io
import json
import logging
import os
import re
import secrets
import signal
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

if __package__:
    from . import rules as _rules
    from . import storage as _storage
    from . import xet as _xet
else:  # ``python hub_emo/hub/server.py``: standard library only, the hub_emo package is not imported
    import rules as _rules  # type: ignore[no-redef]
    import storage as _storage  # type: ignore[no-redef]
    import xet as _xet  # type: ignore[no-redef]

DEFAULT_BRANCH, MAX_FILE_SIZE = _rules.DEFAULT_BRANCH, _rules.MAX_FILE_SIZE
HubError, decode_base64, repo_not_found = _rules.HubError, _rules.decode_base64, _rules.repo_not_found
validate_path, validate_ref_name = _rules.validate_path, _rules.validate_ref_name
validate_repo_id, validate_repo_type = _rules.validate_repo_id, _rules.validate_repo_type
Entry, Operation, Storage, lfs_pointer = _storage.Entry, _storage.Operation, _storage.Storage, _storage.lfs_pointer

logger = logging.getLogger("hub_emo.hub.server")

#: The one user this Hub knows; every valid token acts as this user.
USER = "hub-emo"
TOKEN_FILE = "token"
SECRET_FILE = ".upload_secret"
MAX_JSON_BODY = 16 * 1024 * 1024
MAX_COMMIT_BODY = 4 * 1024**3
#: One line of a commit payload (an inline file is base64 on one line; larger files go through LFS).
MAX_COMMIT_LINE = MAX_JSON_BODY
#: Files above this size, or whose first bytes contain NUL, go through LFS.
LFS_THRESHOLD = 10 * 1024 * 1024
PAGE_SIZE = 1000
MAX_PATHS = 10_000
XET_TOKEN_SECONDS = 3600
#: Anonymous requests that carry a body (``validate-yaml``, ``paths-info``) are refused above this size.
MAX_ANONYMOUS_BODY = 1024 * 1024
#: A card's YAML block larger than this is validated only for a client with a token.
MAX_ANONYMOUS_YAML = 64 * 1024
MAX_YAML = 1024 * 1024
#: Collections in a card's metadata nest at most this deep (a real card needs fewer than 10).
MAX_YAML_DEPTH = 64
#: An unread body up to this size is drained to keep the connection; a larger one closes it.
DRAIN_LIMIT = 64 * 1024
SOCKET_TIMEOUT = 60.0
MAX_CONNECTIONS = 64
#: A request's line and headers must arrive within this many seconds of its first byte.
REQUEST_TIMEOUT = 30.0
#: At the connection cap, a connection waiting this long for a request's headers is closed
#: to serve a new one.
EVICT_AFTER = 1.0
#: A body must arrive at this average rate (bytes/s) once ``REQUEST_TIMEOUT`` has been used up.
MIN_BODY_RATE = 16 * 1024
#: Anonymous CPU-heavy requests (card validation, paths-info) parsed at once; more wait up to
#: ``ANONYMOUS_WAIT`` seconds for a turn, then get a 503.
ANONYMOUS_AT_ONCE = 1
ANONYMOUS_WAIT = 5.0
#: Uploaded blobs that no commit names are deleted at start-up once this many seconds old.
ORPHAN_BLOB_GRACE = 3600.0
_TYPE_BY_PLURAL = {"models": "model", "datasets": "dataset", "spaces": "space"}
_URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}


# -- tokens -----------------------------------------------------------------------------
def load_or_create_token(root: str | os.PathLike) -> tuple[str, Path]:
    """The token stored under ``root`` (created with mode 0600 on first use) and its path."""
    path = Path(root) / TOKEN_FILE
    Path(root).mkdir(parents=True, exist_ok=True)
    if not path.exists():
        token = "hf_" + secrets.token_urlsafe(30)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
    os.chmod(path, 0o600)
    token = path.read_text().strip()
    if not token:
        raise ValueError(f"{path}: the token file is empty; delete it to make a new token")
    return token, path


def _load_secret(root: Path) -> bytes:
    """A key for signing LFS upload URLs, kept under the root so it survives restarts."""
    path = root / SECRET_FILE
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


# -- request bodies ---------------------------------------------------------------------
_CHUNK_SIZE_LINE = re.compile(rb"([0-9A-Fa-f]{1,15})(;[^\r\n]*)?\r\n")
_CONTENT_LENGTH = re.compile(r"[0-9]{1,15}")
_HOST = re.compile(r"(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?")
_UNSAFE_IN_HEADER = re.compile(r"[\x00-\x1f\x7f]")
_XET_TOKEN = re.compile(r"xet_(?P<expires>[0-9]{1,12})_(?P<key>[0-9a-f]{16})_(?P<sig>[0-9a-f]{64})")
MAX_LINE = 1024
MAX_TRAILERS = 32


class _ChunkedReader:
    """Reads a ``Transfer-Encoding: chunked`` body as one stream, strictly (RFC 9112 section 7.1).

    A chunk size is 1 to 15 hex digits: no sign, no ``0x``, no spaces. Anything else is a
    framing error; the connection cannot be trusted after one and is closed.
    """

    def __init__(self, rfile, limit: int):
        self.rfile, self.left_in_chunk, self.done, self.total, self.limit = rfile, 0, False, 0, limit

    def _count(self, n: int) -> None:
        """Every byte on the wire counts against the limit: size lines, extensions, CRLFs and
        trailers too, or 1-byte chunks with long extensions read far past it."""
        self.total += n
        if self.total > self.limit:
            raise HubError(413, f"Request body too large (limit {self.limit} bytes)")

    def _line(self) -> bytes:
        line = self.rfile.readline(MAX_LINE + 1)
        if not line:
            raise HubError(400, "Request body ended early")
        if len(line) > MAX_LINE or not line.endswith(b"\r\n"):
            raise HubError(400, "Malformed chunked request body: line too long or not ended by CRLF")
        self._count(len(line))
        return line

    def readinto(self, view) -> int:
        if self.done:
            return 0
        if self.left_in_chunk == 0:
            match = _CHUNK_SIZE_LINE.fullmatch(self._line())
            if not match:
                raise HubError(400, "Malformed chunked request body: a chunk size must be hex digits only")
            size = int(match.group(1), 16)
            if size == 0:
                for _ in range(MAX_TRAILERS + 1):
                    if self._line() == b"\r\n":
                        self.done = True
                        return 0
                raise HubError(400, f"Malformed chunked request body: more than {MAX_TRAILERS} trailer lines")
            self._count(size + 2)
            self.left_in_chunk = size
        n = self.rfile.readinto(view[: min(len(view), self.left_in_chunk)])
        if not n:
            raise HubError(400, "Request body ended early")
        self.left_in_chunk -= n
        if self.left_in_chunk == 0 and self.rfile.read(2) != b"\r\n":
            raise HubError(400, "Malformed chunked request body: a chunk is not followed by CRLF")
        return n

    @property
    def finished(self) -> bool:
        return self.done


class _LengthReader:
    def __init__(self, rfile, length: int):
        self.rfile, self.left = rfile, length

    def readinto(self, view) -> int:
        if self.left <= 0:
            return 0
        n = self.rfile.readinto(view[: min(len(view), self.left)])
        if not n:
            raise HubError(400, "Request body ended early")
        self.left -= n
        return n

    @property
    def finished(self) -> bool:
        return self.left <= 0


def _read_all(reader, limit: int) -> bytes:
    out = bytearray()
    buf = bytearray(1024 * 1024)
    view = memoryview(buf)
    while n := reader.readinto(view):
        out += view[:n]
        if len(out) > limit:
            raise HubError(413, f"Request body too large (limit {limit} bytes)")
    return bytes(out)


def parse_json(raw: bytes | str, what: str = "request body"):
    """``json.loads`` that turns every way a hostile document can fail into a 400."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise HubError(400, f"Malformed JSON in {what}: nested too deeply") from None
    except (ValueError, UnicodeDecodeError):
        raise HubError(400, f"Malformed JSON in {what}") from None


def log_safe(value) -> str:
    """Text for a log line: anything but printable ASCII escaped (``\\x1b``, ``\\x9b``, ``\\u202e``),
    so a client's bytes cannot drive the terminal that shows the log."""
    return str(value).encode("unicode_escape").decode("ascii")


def header_safe(value) -> str:
    """A header value with control characters (CR/LF above all) replaced: nothing a client
    sent can start a header or a response of its own."""
    return _UNSAFE_IN_HEADER.sub(" ", str(value))


@dataclass(frozen=True)
class Limits:
    """What one client may take from the server (each the module constant of the same meaning).

    ``timeout``: seconds of silence on a socket read or write; ``request_timeout``: seconds for
    a request's headers from its first byte, and the grace a body gets before ``min_body_rate``
    (bytes/s, averaged) applies; ``max_connections``: connections served at once;
    ``anonymous_at_once``: anonymous CPU-heavy requests parsed at once, the others waiting up
    to ``anonymous_wait`` seconds for a turn; ``xet_quota``: bytes
    the stored xorbs may take (None: no limit); ``xorb_ttl``: seconds a xorb whose chunks have
    not all gone into files is kept (see :class:`hub_emo.hub.xet.XetStore`);
    ``orphan_blob_grace``: seconds an upload no commit names is kept (collected at start-up).
    """

    timeout: float = SOCKET_TIMEOUT
    request_timeout: float = REQUEST_TIMEOUT
    min_body_rate: int = MIN_BODY_RATE
    max_connections: int = MAX_CONNECTIONS
    anonymous_at_once: int = ANONYMOUS_AT_ONCE
    anonymous_wait: float = ANONYMOUS_WAIT
    xet_quota: int | None = None
    xorb_ttl: float = _xet.XORB_TTL
    orphan_blob_grace: float = ORPHAN_BLOB_GRACE


class _DeadlineSocketIO(io.RawIOBase):
    """A socket's reading side that gives up at a deadline, not only after ``timeout`` seconds
    of silence: a client trickling a byte now and then (slowloris) would reset a per-read
    timeout forever. ``deadline`` is a callable giving a ``time.monotonic()`` value or None."""

    def __init__(self, sock: socket.socket, timeout: float):
        self.sock, self.timeout, self.received = sock, timeout, 0
        self.started_at: float | None = None  # set at the first byte read when None
        self.deadline = lambda: None

    def readable(self) -> bool:
        return True

    def readinto(self, view) -> int:
        deadline = self.deadline()
        wait = self.timeout
        if deadline is not None:
            wait = min(wait, deadline - time.monotonic())
            if wait <= 0:
                raise TimeoutError("the request did not arrive before its deadline")
        self.sock.settimeout(wait)
        try:
            n = self.sock.recv_into(view)
        finally:
            self.sock.settimeout(self.timeout)
        if n and self.started_at is None:
            self.started_at = time.monotonic()
        self.received += n
        return n


# -- the server -------------------------------------------------------------------------
class HubHTTPServer(ThreadingHTTPServer):
    """One thread per connection, at most ``limits.max_connections`` of them: at the cap, the
    connection that has waited longest for a request's headers (over ``EVICT_AFTER`` s: slow
    or idle) is closed for a new one, else the new one is answered 503 and closed at once.
    Every socket read and write gives up after
    ``limits.timeout`` seconds of silence, and every request's headers and body have a
    deadline (see `Limits`), so idle or slow clients cannot hold the threads."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(
        self,
        address,
        storage: Storage,
        tokens: list[str],
        secret: bytes,
        verbose: bool = False,
        limits: Limits = Limits(),
    ):
        self.storage = storage
        self.xet = _xet.XetStore(storage, limits.xet_quota, limits.xorb_ttl)
        self.tokens = [t.encode() for t in tokens]
        self.secret = secret
        self.verbose = verbose
        self.limits = limits
        self.socket_timeout = limits.timeout
        self.max_connections = limits.max_connections
        self.anonymous_slots = threading.BoundedSemaphore(limits.anonymous_at_once)
        self.xet_keys = {self.xet_key(t) for t in self.tokens}
        self._connections = 0
        self._connections_lock = threading.Lock()
        self._waiting: dict = {}
        super().__init__(address, HubRequestHandler)

    @property
    def active_connections(self) -> int:
        return self._connections

    def xet_key(self, token: bytes) -> str:
        """A digest naming a hub token inside the Xet tokens it mints (the token itself is never
        put in one): a Xet token whose hub token is no longer accepted is refused."""
        return hmac.new(self.secret, b"xet-key:" + token, hashlib.sha256).hexdigest()[:16]

    def process_request(self, request, client_address):
        with self._connections_lock:
            busy = self._connections >= self.max_connections and not self._evict_slowest()
            if not busy:
                self._connections += 1
        if busy:
            self._refuse_busy(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._release()

    def _release(self) -> None:
        with self._connections_lock:
            self._connections -= 1

    def waiting_for_headers(self, handler, since: float | None) -> None:
        """Mark a connection as waiting for a request's headers since ``since`` (None: no longer)."""
        with self._connections_lock:
            if since is None:
                self._waiting.pop(handler, None)
            else:
                self._waiting[handler] = since

    def _evict_slowest(self) -> bool:
        """At the cap, close the connection that has waited longest (over ``EVICT_AFTER`` s) for
        its request's headers, so a slow or idle client's slot serves a new one (the lock is held).
        Its thread sees the end of its stream and ends; the count may exceed the cap meanwhile."""
        if not self._waiting:
            return False
        handler, since = min(self._waiting.items(), key=lambda item: item[1])
        if time.monotonic() - since < EVICT_AFTER:
            return False
        del self._waiting[handler]
        with contextlib.suppress(OSError):
            handler.connection.shutdown(socket.SHUT_RDWR)
        return True

    def _refuse_busy(self, request) -> None:
        body = b'{"error": "Too many connections to this Hub; retry later"}'
        head = (
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
        )
        with contextlib.suppress(OSError):
            request.settimeout(1)
            request.sendall(head.encode() + body)
        self.shutdown_request(request)


class HubRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "hub_emo-hub"
    server: HubHTTPServer

    # -- plumbing ---------------------------------------------------------------------
    def setup(self):
        """Disable Nagle: a response's headers and body go out as separate writes, and Nagle
        held the second until the client's delayed ACK (about 40 ms per request)."""
        self.timeout = self.server.socket_timeout
        super().setup()
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._socket_io = _DeadlineSocketIO(self.connection, self.timeout)
        self.rfile = io.BufferedReader(self._socket_io, 64 * 1024)

    def handle_one_request(self):
        """One request under its deadlines: the headers' starts when the connection opens for
        its first request, at the first byte for the next ones (an idle kept-alive connection
        waits under the per-read timeout alone)."""
        socket_io, limits = self._socket_io, self.server.limits
        socket_io.started_at = None if socket_io.received else time.monotonic()
        socket_io.deadline = lambda: None if socket_io.started_at is None else socket_io.started_at + limits.request_timeout
        self.server.waiting_for_headers(self, time.monotonic())
        try:
            super().handle_one_request()
        finally:
            self.server.waiting_for_headers(self, None)
            socket_io.deadline = lambda: None

    def _start_body_deadline(self) -> None:
        """From here the body must arrive within ``request_timeout`` plus its size at ``min_body_rate``."""
        socket_io, limits = self._socket_io, self.server.limits
        start, received = time.monotonic(), socket_io.received
        socket_io.deadline = lambda: start + limits.request_timeout + (socket_io.received - received) / limits.min_body_rate

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        if self.server.verbose:
            # The request line only, without the query string (it may carry an upload signature).
            path = urlsplit(getattr(self, "path", "")).path  # no path yet when the request line is malformed
            line = f"{self.address_string()} {self.command} {path} {args[1] if len(args) > 1 else ''}"
            sys.stderr.write(log_safe(line) + "\n")

    def log_error(self, format, *args):  # noqa: A002
        logger.debug("%s", log_safe(format % args))

    def send_response(self, code, message=None):
        self._responded = True
        super().send_response(code, message)

    def send_header(self, keyword, value):
        super().send_header(keyword, header_safe(value))

    def do_GET(self):
        self._dispatch()

    def do_HEAD(self):
        self._dispatch()

    def do_POST(self):
        self._dispatch()

    def do_PUT(self):
        self._dispatch()

    def do_DELETE(self):
        self._dispatch()

    def _dispatch(self):
        self.server.waiting_for_headers(self, None)
        self._reader = None
        self._responded = False
        try:
            self._start_body_deadline()
            self._reader = self._make_reader()
            self._route()
        except HubError as error:
            self._send_error(error)
        except TimeoutError:
            if self._responded:
                self.close_connection = True
                return
            self._send_error(HubError(408, "The request's body did not arrive in time"))
        except ConnectionError:
            self.close_connection = True
            return
        except Exception:  # a bug must not take the server down or leak details
            logger.exception("internal error on %s %s", log_safe(self.command), log_safe(urlsplit(self.path).path))
            if self._responded:
                self.close_connection = True
                return
            self._send_error(HubError(500, "Internal server error"))
        self._finish_body()

    def _make_reader(self):
        """The body's framing, checked strictly: a request whose length is ambiguous is refused
        and its connection closed, as nothing after it could be parsed safely."""
        codings = self.headers.get_all("Transfer-Encoding") or []
        lengths = self.headers.get_all("Content-Length") or []
        if codings:
            self.close_connection = True
            if lengths:
                raise HubError(400, "A request cannot have both Transfer-Encoding and Content-Length")
            if [c.strip().lower() for c in codings] != ["chunked"]:
                raise HubError(501, "Only the 'chunked' transfer coding is supported")
            self.close_connection = False
            return _ChunkedReader(self.rfile, MAX_COMMIT_BODY)
        if len({v.strip() for v in lengths}) > 1 or (lengths and not _CONTENT_LENGTH.fullmatch(lengths[0].strip())):
            self.close_connection = True
            raise HubError(400, "Invalid Content-Length")
        return _LengthReader(self.rfile, int(lengths[0]) if lengths else 0)

    def _body_finished(self) -> bool:
        return self._reader is None or self._reader.finished

    def _finish_body(self):
        """Keep a kept-alive connection in sync: read what is left of a small body, close
        the connection rather than read a large or chunked one nobody needs."""
        reader = self._reader
        if self.close_connection or self._body_finished():
            return
        if not isinstance(reader, _LengthReader) or reader.left > DRAIN_LIMIT:
            self.close_connection = True
            return
        try:
            _read_all(reader, DRAIN_LIMIT)
        except (HubError, OSError):
            self.close_connection = True

    def _body(self, limit: int = MAX_JSON_BODY) -> bytes:
        length = getattr(self._reader, "left", None)
        if length is not None and length > limit:
            raise HubError(413, f"Request body too large (limit {limit} bytes)")
        if isinstance(self._reader, _ChunkedReader):
            self._reader.limit = min(self._reader.limit, limit)
        return _read_all(self._reader, limit)

    @contextlib.contextmanager
    def _cpu_slot(self, authenticated: bool):
        """Anonymous CPU-heavy work runs a few at a time: a burst of honest clients waits its
        turn, a flood cannot take every core (a waiting thread costs no CPU), and a wait past
        ``anonymous_wait`` is a 503. A client with a token is not limited."""
        if authenticated:
            yield
            return
        if not self.server.anonymous_slots.acquire(timeout=self.server.limits.anonymous_wait):
            raise HubError(503, "Too many anonymous requests of this kind at once; retry later")
        try:
            yield
        finally:
            self.server.anonymous_slots.release()

    def _json_body(self, limit: int = MAX_JSON_BODY) -> dict:
        raw = self._body(limit)
        if not raw.strip():
            return {}
        data = parse_json(raw)
        if not isinstance(data, dict):
            raise HubError(400, "Malformed JSON in request body: expected an object")
        return data

    def _send(self, status: int, body: bytes = b"", content_type: str = "application/json", headers: dict | None = None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, data, status: int = 200, headers: dict | None = None, content_type: str = "application/json"):
        self._send(status, json.dumps(data).encode(), content_type, headers)

    def _send_error(self, error: HubError):
        """Answer a refusal without reading the rest of the body: the connection is closed
        instead, so a refused client cannot make the server read what it sends."""
        headers = {"X-Error-Message": error.message.encode("ascii", "replace").decode()[:500]}
        if error.code:
            headers["X-Error-Code"] = error.code
        if error.status == 503:
            headers["Retry-After"] = "1"
        if not self._body_finished() or error.status in (408, 413):
            self.close_connection = True
        with contextlib.suppress(ConnectionError, TimeoutError):
            self._json({"error": error.message}, error.status, headers)

    @property
    def _base(self) -> str:
        host = self.headers.get("Host") or ""
        if not _HOST.fullmatch(host):
            host = f"{self.server.server_address[0]}:{self.server.server_address[1]}"
        return f"http://{host}"

    # -- auth ---------------------------------------------------------------------------
    def _authenticated(self) -> bool:
        """True for a valid token, False for none; 401 for a wrong one (as the Hub answers)."""
        header = self.headers.get("Authorization", "")
        if not header:
            return False
        scheme, _, token = header.partition(" ")
        given = token.strip().encode()
        if scheme.lower() == "bearer" and given and any(hmac.compare_digest(given, t) for t in self.server.tokens):
            return True
        raise HubError(401, "Invalid credentials in Authorization header")

    def _require_write(self):
        if not self._authenticated():
            raise HubError(401, "A valid token is required to write to this Hub")

    def _readable_repo(self, repo_type: str, repo_id: str) -> dict:
        authed = self._authenticated()
        meta = self.server.storage.repo_meta(repo_type, repo_id)
        if meta.get("private") and not authed:
            raise repo_not_found(repo_id)
        return meta

    def _writable_repo(self, repo_type: str, repo_id: str) -> dict:
        self._require_write()
        return self.server.storage.repo_meta(repo_type, repo_id)

    # -- routing --------------------------------------------------------------------------
    def _route(self):
        url = urlsplit(self.path)
        self._query = parse_qs(url.query)
        segments = url.path.strip("/").split("/")
        method = self.command
        if segments[0] == "api":
            return self._route_api(method, segments[1:])
        if segments[0] == "lfs-upload" and method == "PUT" and len(segments) == 2:
            return self._lfs_upload(segments[1])
        if segments[0] == "xet":
            return self._route_xet(method, segments[1:])
        repo_type = "model"
        if segments[0] in ("datasets", "spaces"):
            repo_type = _TYPE_BY_PLURAL[segments[0]]
            segments = segments[1:]
        if len(segments) >= 2:
            ns, name, rest = unquote(segments[0]), unquote(segments[1]), segments[2:]
            if rest == ["info", "lfs", "objects", "batch"] and name.endswith(".git") and method == "POST":
                return self._lfs_batch(repo_type, f"{ns}/{name[:-4]}")
            if len(rest) >= 3 and rest[0] == "resolve" and method in ("GET", "HEAD"):
                return self._resolve(repo_type, f"{ns}/{name}", unquote(rest[1]), unquote("/".join(rest[2:])))
            if not rest and method in ("GET", "HEAD"):
                return self._repo_page(repo_type, f"{ns}/{name}")
        raise HubError(404, "Not found")

    def _route_api(self, method: str, seg: list[str]):
        if seg == ["whoami-v2"] and method == "GET":
            return self._whoami()
        if seg == ["repos", "create"] and method == "POST":
            return self._create_repo()
        if seg == ["repos", "delete"] and method == "DELETE":
            return self._delete_repo()
        if seg == ["validate-yaml"] and method == "POST":
            return self._validate_yaml()
        if len(seg) >= 3 and seg[0] in _TYPE_BY_PLURAL:
            repo_type = _TYPE_BY_PLURAL[seg[0]]
            repo_id = f"{unquote(seg[1])}/{unquote(seg[2])}"
            validate_repo_id(repo_id)
            rest = seg[3:]
            action = rest[0] if rest else None
            if action is None and method == "GET":
                return self._info(repo_type, repo_id, DEFAULT_BRANCH)
            if action == "revision" and len(rest) == 2 and method == "GET":
                return self._info(repo_type, repo_id, unquote(rest[1]))
            if action == "tree" and len(rest) >= 2 and method == "GET":
                return self._tree(repo_type, repo_id, unquote(rest[1]), unquote("/".join(rest[2:])))
            if action == "paths-info" and len(rest) == 2 and method == "POST":
                return self._paths_info(repo_type, repo_id, unquote(rest[1]))
            if action == "refs" and len(rest) == 1 and method == "GET":
                return self._refs(repo_type, repo_id)
            if action == "commits" and len(rest) == 2 and method == "GET":
                return self._commits(repo_type, repo_id, unquote(rest[1]))
            if action == "xet-write-token" and len(rest) == 2 and method == "GET":
                return self._xet_write_token(repo_type, repo_id, unquote(rest[1]))
            if action == "preupload" and len(rest) == 2 and method == "POST":
                return self._preupload(repo_type, repo_id, unquote(rest[1]))
            if action == "commit" and len(rest) == 2 and method == "POST":
                return self._commit(repo_type, repo_id, unquote(rest[1]))
            if action in ("branch", "tag") and len(rest) == 2 and method in ("POST", "DELETE"):
                return self._ref_change(repo_type, repo_id, action, unquote(rest[1]))
            if action == "settings" and len(rest) == 1 and method == "PUT":
                return self._settings(repo_type, repo_id)
        raise HubError(404, "Not found")

    # -- endpoints ----------------------------------------------------------------------
    def _whoami(self):
        if not self._authenticated():
            raise HubError(401, "A valid token is required")
        self._json(
            {
                "type": "user",
                "id": USER,
                "name": USER,
                "fullname": "Local hub_emo Hub user",
                "isPro": False,
                "orgs": [],
                "auth": {"type": "access_token", "accessToken": {"displayName": "hub_emo", "role": "write"}},
            }
        )

    def _validate_yaml(self):
        """Check a card's metadata block as the Hub does before ``ModelCard.push_to_hub``.

        The client sends no token here, so anyone can ask: an anonymous body and YAML block are
        held to sizes that parse quickly (a 64 KiB block: ~0.15 s CPU with libyaml, ~0.65 s
        with PyYAML's pure-Python loader).
        """
        authenticated = self._authenticated()
        body = self._json_body(MAX_JSON_BODY if authenticated else MAX_ANONYMOUS_BODY)
        content, repo_type = body.get("content"), body.get("repoType") or "model"
        validate_repo_type(repo_type)
        if not isinstance(content, str):
            raise HubError(400, "Expected 'content' as a string")
        with self._cpu_slot(authenticated):
            errors = card_metadata_errors(content, MAX_YAML if authenticated else MAX_ANONYMOUS_YAML)
        self._json({"errors": [{"message": e} for e in errors], "warnings": []}, 400 if errors else 200)

    def _repo_url(self, repo_type: str, repo_id: str) -> str:
        return f"{self._base}/{_URL_PREFIX[repo_type]}{repo_id}"

    def _repo_from_body(self, body: dict) -> tuple[str, str]:
        repo_type = validate_repo_type(body.get("type") or "model")
        name, org = body.get("name"), body.get("organization")
        if not isinstance(name, str) or not (org is None or isinstance(org, str)):
            raise HubError(400, "Expected 'name' (and optionally 'organization') as strings")
        repo_id = name if "/" in name else f"{org or USER}/{name}"
        validate_repo_id(repo_id)
        return repo_type, repo_id

    def _create_repo(self):
        self._require_write()
        body = self._json_body()
        repo_type, repo_id = self._repo_from_body(body)
        private = bool(body.get("private")) or body.get("visibility") == "private"
        url = self._repo_url(repo_type, repo_id)
        if not self.server.storage.create_repo(repo_type, repo_id, private, USER):
            return self._json({"error": "You already created this repo", "url": url}, 409)
        self._json({"url": url, "name": repo_id, "id": repo_id})

    def _delete_repo(self):
        self._require_write()
        repo_type, repo_id = self._repo_from_body(self._json_body())
        self.server.storage.delete_repo(repo_type, repo_id)
        self._json({})

    def _settings(self, repo_type: str, repo_id: str):
        self._writable_repo(repo_type, repo_id)
        body = self._json_body()
        if "private" in body or "visibility" in body:
            private = body.get("visibility") == "private" if "visibility" in body else bool(body["private"])
            self.server.storage.set_private(repo_type, repo_id, private)
        self._json({})

    def _file_json(self, entry: Entry) -> dict:
        item = {"type": "file", "oid": entry.oid, "size": entry.size, "path": entry.path}
        if entry.lfs:
            item["lfs"] = {"oid": entry.sha256, "size": entry.size, "pointerSize": len(lfs_pointer(entry.sha256, entry.size))}
        return item

    @staticmethod
    def _folder_json(path: str, files: dict[str, Entry]) -> dict:
        prefix = path + "/"
        digest = hashlib.sha1(path.encode())
        for p in sorted(p for p in files if p.startswith(prefix)):
            digest.update(p.encode() + files[p].oid.encode())
        return {"type": "directory", "oid": digest.hexdigest(), "size": 0, "path": path}

    def _info(self, repo_type: str, repo_id: str, revision: str):
        storage = self.server.storage
        meta = self._readable_repo(repo_type, repo_id)
        commit = storage.resolve(repo_type, repo_id, revision)
        record = storage.commit_record(repo_type, repo_id, commit)
        blobs = self._query.get("blobs", ["false"])[0].lower() in ("1", "true")
        siblings = []
        for path, e in sorted(record["files"].items()):
            sibling = {"rfilename": path}
            if blobs:
                sibling.update(size=e["size"], blobId=e["oid"])
                if e["lfs"]:
                    sibling["lfs"] = {"size": e["size"], "sha256": e["sha256"], "pointerSize": len(lfs_pointer(e["sha256"], e["size"]))}
            siblings.append(sibling)
        info = {
            "_id": commit[:24],
            "id": repo_id,
            "author": repo_id.split("/")[0],
            "sha": commit,
            "createdAt": meta.get("createdAt"),
            "lastModified": record["date"],
            "private": bool(meta.get("private")),
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": siblings,
            "usedStorage": sum(e["size"] for e in record["files"].values()),
        }
        if repo_type == "model":
            info["modelId"] = repo_id
        self._json(info)

    def _tree(self, repo_type: str, repo_id: str, revision: str, path: str):
        storage = self.server.storage
        self._readable_repo(repo_type, repo_id)
        files = storage.files(repo_type, repo_id, storage.resolve(repo_type, repo_id, revision))
        path = path.strip("/")
        if path:
            validate_path(path)
        recursive = self._query.get("recursive", ["false"])[0].lower() in ("1", "true")
        prefix = path + "/" if path else ""
        if path and not any(p.startswith(prefix) for p in files):
            raise HubError(404, f"Folder not found: {path!r}", "EntryNotFound")
        entries: dict[str, dict] = {}
        for p, entry in files.items():
            if not p.startswith(prefix):
                continue
            parts = p[len(prefix):].split("/")
            for depth in range(1, len(parts)):
                folder = prefix + "/".join(parts[:depth])
                if folder not in entries and (recursive or depth == 1):
                    entries[folder] = self._folder_json(folder, files)
            if recursive or len(parts) == 1:
                entries[p] = self._file_json(entry)
        items = [entries[k] for k in sorted(entries)]
        try:
            cursor = max(0, int(self._query.get("cursor", ["0"])[0]))
        except ValueError:
            raise HubError(400, "Invalid cursor") from None
        page = items[cursor : cursor + PAGE_SIZE]
        headers = {}
        if cursor + PAGE_SIZE < len(items):
            query = {k: v[0] for k, v in self._query.items()}
            query["cursor"] = str(cursor + PAGE_SIZE)
            headers["Link"] = f'<{self._base}{urlsplit(self.path).path}?{urlencode(query)}>; rel="next"'
        self._json(page, headers=headers)

    def _paths_info(self, repo_type: str, repo_id: str, revision: str):
        storage = self.server.storage
        self._readable_repo(repo_type, repo_id)
        authenticated = self._authenticated()
        raw = self._body(MAX_JSON_BODY if authenticated else MAX_ANONYMOUS_BODY)
        with self._cpu_slot(authenticated):
            paths = _paths_from_body(raw, self.headers.get("Content-Type", ""))
            files = storage.files(repo_type, repo_id, storage.resolve(repo_type, repo_id, revision))
            folders = {p[:i] for p in files for i, c in enumerate(p) if c == "/"}
            out = []
            for path in paths:
                path = validate_path(path.strip("/")) if path.strip("/") else ""
                if path in files:
                    out.append(self._file_json(files[path]))
                elif path in folders:
                    out.append(self._folder_json(path, files))
        self._json(out)

    def _refs(self, repo_type: str, repo_id: str):
        self._readable_repo(repo_type, repo_id)
        refs = self.server.storage.refs(repo_type, repo_id)
        def fmt(kind, table):
            return [{"name": n, "ref": f"refs/{kind}/{n}", "targetCommit": c} for n, c in sorted(table.items())]
        self._json({"branches": fmt("heads", refs["branches"]), "converts": [], "tags": fmt("tags", refs["tags"]), "pullRequests": []})

    def _commits(self, repo_type: str, repo_id: str, revision: str):
        storage = self.server.storage
        self._readable_repo(repo_type, repo_id)
        items = [
            {"id": r["id"], "title": r["title"], "message": r["message"], "authors": [{"user": r["author"]}], "date": r["date"]}
            for r in storage.history(repo_type, repo_id, storage.resolve(repo_type, repo_id, revision))
        ]
        self._json(items)

    def _preupload(self, repo_type: str, repo_id: str, revision: str):
        self._writable_repo(repo_type, repo_id)
        storage = self.server.storage
        head = storage.resolve(repo_type, repo_id, revision)
        body = self._json_body()
        files = body.get("files")
        if not isinstance(files, list) or len(files) > 1000:
            raise HubError(400, "Expected 'files' as a list of at most 1000 entries")
        lfs_suffixes = _lfs_suffixes(storage, repo_type, repo_id, head)
        out = []
        for item in files:
            if not isinstance(item, dict) or not isinstance(item.get("size"), int):
                raise HubError(400, "Each file needs 'path', 'size' and 'sample'")
            path = validate_path(item.get("path"))
            try:
                sample = base64.b64decode(item.get("sample") or "", validate=True)
            except (binascii.Error, ValueError, TypeError):
                raise HubError(400, f"File {path!r}: 'sample' is not valid base64") from None
            lfs = item["size"] > LFS_THRESHOLD or b"\0" in sample or path.endswith(lfs_suffixes)
            out.append({"path": path, "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False})
        self._json({"files": out, "commitOid": head})

    def _lfs_batch(self, repo_type: str, repo_id: str):
        self._writable_repo(repo_type, repo_id)
        body = self._json_body()
        if body.get("operation") != "upload":
            raise HubError(422, "Only the 'upload' operation of the LFS batch API is served")
        objects = body.get("objects")
        if not isinstance(objects, list) or len(objects) > 1000:
            raise HubError(400, "Expected 'objects' as a list of at most 1000 entries")
        storage = self.server.storage
        expires = int(time.time()) + 24 * 3600
        out = []
        for obj in objects:
            oid, size = (obj.get("oid"), obj.get("size")) if isinstance(obj, dict) else (None, None)
            if not isinstance(oid, str) or not isinstance(size, int) or size < 0 or size > MAX_FILE_SIZE:
                raise HubError(400, "Each object needs a sha256 'oid' and a 'size'")
            path = storage.blob_path(oid)  # validates the oid
            item = {"oid": oid, "size": size, "authenticated": True}
            if not (path.is_file() and path.stat().st_size == size):
                query = urlencode({"size": size, "expires": expires, "sig": self._sign(oid, size, expires)})
                item["actions"] = {"upload": {"href": f"{self._base}/lfs-upload/{oid}?{query}", "header": {}}}
            out.append(item)
        self._json({"transfer": "basic", "objects": out, "hash_algo": "sha256"}, content_type="application/vnd.git-lfs+json")

    def _sign(self, oid: str, size: int | str, expires: int) -> str:
        return hmac.new(self.server.secret, f"{oid}:{size}:{expires}".encode(), hashlib.sha256).hexdigest()

    def _lfs_upload(self, oid: str):
        try:
            size = int(self._query["size"][0])
            expires = int(self._query["expires"][0])
            sig = self._query["sig"][0]
        except (KeyError, ValueError, IndexError):
            raise HubError(403, "Upload URL is missing its signature") from None
        if not hmac.compare_digest(sig, self._sign(oid, size, expires)) or expires < time.time():
            raise HubError(403, "Upload URL is invalid or expired: ask the LFS batch endpoint again")
        length = getattr(self._reader, "left", None)
        if length is not None and length != size:
            raise HubError(400, f"Upload of {oid}: body has {length} bytes, expected {size}")
        self.server.storage.put_stream(self._reader, size, oid)
        self._send(200, b"", headers={"ETag": f'"{oid}"'})

    def _commit(self, repo_type: str, repo_id: str, revision: str):
        self._writable_repo(repo_type, repo_id)
        if self._query.get("create_pr", ["0"])[0] not in ("0", "false", ""):
            raise HubError(400, "Pull requests are not supported by this Hub")
        storage = self.server.storage
        header, operations = None, []
        declared = getattr(self._reader, "left", 0)
        if declared > MAX_COMMIT_BODY:
            raise HubError(413, f"Commit too large (limit {MAX_COMMIT_BODY} bytes)")
        with tempfile.SpooledTemporaryFile(max_size=32 * 1024 * 1024, dir=storage.tmp, prefix="commit-") as spool:
            buf = bytearray(1024 * 1024)
            view = memoryview(buf)
            total = 0
            while n := self._reader.readinto(view):
                spool.write(view[:n])
                total += n
                if total > MAX_COMMIT_BODY:
                    raise HubError(413, "Commit too large")
            spool.seek(0)
            for number, line in enumerate(iter(lambda: spool.readline(MAX_COMMIT_LINE + 1), b""), 1):
                if len(line) > MAX_COMMIT_LINE:  # a line is parsed in memory: several times its size
                    raise HubError(413, f"Commit payload line {number} is over {MAX_COMMIT_LINE} bytes: send large files through LFS")
                if not line.strip():
                    continue
                item = parse_json(line, f"commit payload line {number}")
                try:
                    key, value = item["key"], item["value"]
                    if not isinstance(value, dict):
                        raise TypeError
                except (ValueError, KeyError, TypeError):
                    raise HubError(400, f"Malformed commit payload: line {number} is not a JSON object with 'key' and 'value'") from None
                if key == "header":
                    header = value
                else:
                    operations.append(self._operation(key, value))
        if header is None or not isinstance(header.get("summary"), str) or not header["summary"].strip():
            raise HubError(400, "Malformed commit payload: a header with a 'summary' is required")
        parent = header.get("parentCommit")
        commit = storage.commit(
            repo_type,
            repo_id,
            revision,
            operations,
            title=header["summary"][:1000],
            message=str(header.get("description") or "")[:100_000],
            author=USER,
            parent_commit=parent if isinstance(parent, str) else None,
        )
        self._json(
            {
                "success": True,
                "commitOid": commit,
                "commitUrl": f"{self._repo_url(repo_type, repo_id)}/commit/{commit}",
                "commitMessage": header["summary"],
                "hookOutput": "",
                "pullRequestUrl": None,
            }
        )

    def _operation(self, key: str, value: dict) -> Operation:
        path = validate_path(value.get("path"))
        storage = self.server.storage
        if key == "file":
            if value.get("encoding", "base64") != "base64" or not isinstance(value.get("content"), str):
                raise HubError(400, f"File {path!r}: expected base64 'content'")
            data = decode_base64(value["content"], path)
            return Operation("add", path, storage.put_bytes(data), len(data), lfs=False)
        if key == "lfsFile":
            oid = value.get("oid")
            blob = storage.blob_path(oid if isinstance(oid, str) else "")
            if not blob.is_file():
                raise HubError(400, f"File {path!r}: LFS object {oid} was not uploaded")
            size = blob.stat().st_size
            if value.get("size") is not None and value.get("size") != size:
                raise HubError(400, f"File {path!r}: size {value.get('size')} does not match the uploaded object ({size})")
            return Operation("add", path, oid, size, lfs=True)
        if key == "deletedFile":
            return Operation("delete", path)
        if key == "deletedFolder":
            return Operation("delete_folder", path)
        raise HubError(400, f"Unknown commit operation {key!r}")

    # -- Xet (see hub_emo.hub.xet) ------------------------------------------------------
    def _xet_write_token(self, repo_type: str, repo_id: str, revision: str):
        """A short-lived token for this Hub's Xet endpoints, in the Hub's JSON and header forms.
        It names (by a keyed digest) the hub token that asked for it, and dies with it."""
        self._writable_repo(repo_type, repo_id)
        self.server.storage.resolve(repo_type, repo_id, revision)
        expires = int(time.time()) + XET_TOKEN_SECONDS
        key = self.server.xet_key(self.headers.get("Authorization", "").partition(" ")[2].strip().encode())
        token = f"xet_{expires}_{key}_{self._sign('xet-write', key, expires)}"
        cas = f"{self._base}/xet"
        headers = {"X-Xet-Cas-Url": cas, "X-Xet-Access-Token": token, "X-Xet-Token-Expiration": str(expires)}
        self._json({"accessToken": token, "exp": expires, "casUrl": cas}, headers=headers)

    def _require_xet_token(self):
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        match = _XET_TOKEN.fullmatch(token.strip())
        if not (scheme.lower() == "bearer" and match and int(match["expires"]) >= time.time()
                and match["key"] in self.server.xet_keys
                and hmac.compare_digest(match["sig"], self._sign("xet-write", match["key"], int(match["expires"])))):
            raise HubError(401, "A valid Xet token is required (ask /api/<type>s/<repo>/xet-write-token/<revision>)")

    def _route_xet(self, method: str, seg: list[str]):
        self._require_xet_token()
        xet = self.server.xet
        if len(seg) == 4 and seg[:2] == ["v1", "xorbs"] and seg[2] == "default" and method == "POST":
            inserted = xet.put_xorb(seg[3], self._reader, getattr(self._reader, "left", None))
            return self._json({"was_inserted": inserted})
        if seg == ["v1", "shards"] and method == "POST":
            xet.put_shard(self._body(_xet.MAX_SHARD_BYTES))
            return self._json({"result": 1})
        if len(seg) == 4 and seg[:2] == ["v1", "chunks"] and method == "GET":
            raise HubError(404, "No global deduplication on this Hub")
        raise HubError(404, "Not found")

    def _ref_change(self, repo_type: str, repo_id: str, action: str, name: str):
        self._writable_repo(repo_type, repo_id)
        storage = self.server.storage
        kind = "branches" if action == "branch" else "tags"
        if self.command == "DELETE":
            storage.set_ref(repo_type, repo_id, kind, name, None)
            return self._json({})
        body = self._json_body()
        if action == "branch":
            start = body.get("startingPoint") or DEFAULT_BRANCH
            target = storage.resolve(repo_type, repo_id, str(start))
            storage.set_ref(repo_type, repo_id, kind, validate_ref_name(name), target)
        else:  # POST /tag/{revision} with {"tag": name}
            tag = body.get("tag")
            if not isinstance(tag, str):
                raise HubError(400, "Expected 'tag' as a string")
            storage.set_ref(repo_type, repo_id, kind, validate_ref_name(tag), storage.resolve(repo_type, repo_id, name))
        self._json({})

    def _repo_page(self, repo_type: str, repo_id: str):
        self._readable_repo(repo_type, repo_id)
        self._send(200, f"{repo_type} repo {repo_id}\n".encode(), "text/plain; charset=utf-8")

    def _resolve(self, repo_type: str, repo_id: str, revision: str, path: str):
        storage = self.server.storage
        self._readable_repo(repo_type, repo_id)
        commit = storage.resolve(repo_type, repo_id, revision)
        validate_path(path)
        entry = storage.files(repo_type, repo_id, commit).get(path)
        if entry is None:
            raise HubError(404, f"Entry not found: {path!r}", "EntryNotFound")
        headers = {"X-Repo-Commit": commit, "Accept-Ranges": "bytes", "ETag": f'"{entry.sha256 if entry.lfs else entry.oid}"'}
        if entry.lfs:
            headers.update({"X-Linked-Etag": f'"{entry.sha256}"', "X-Linked-Size": str(entry.size)})
        start, end = 0, entry.size - 1
        status = 200
        requested = _parse_range(self.headers.get("Range"), entry.size)
        if requested == "invalid":
            headers["Content-Range"] = f"bytes */{entry.size}"
            return self._json({"error": "Requested range not satisfiable"}, 416, headers)
        if requested is not None:
            start, end = requested
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{entry.size}"
        length = max(0, end - start + 1)
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command == "HEAD" or length == 0:
            return
        with open(storage.blob_path(entry.sha256), "rb") as f:
            self.connection.sendfile(f, start, length)


def card_metadata_errors(content: str, max_yaml: int = MAX_YAML) -> list[str]:
    """Problems in a card's YAML metadata block (none when the card has no block).

    The block must be closed and be a mapping; the fields the Hub indexes must have the
    right shapes. PyYAML parses it when installed (a hub_emo dependency); the server
    itself needs only the standard library, and then checks the delimiters alone. A block
    over ``max_yaml`` characters is refused (413) before it is parsed.
    """
    text = content.lstrip("\ufeff")
    if not text.startswith("---"):
        return []
    end = text.find("\n---", 3)
    if end < 0:
        return ["The card's metadata block (started by '---') is never closed"]
    if end > max_yaml:
        raise HubError(413, f"The card's metadata block is over {max_yaml} characters: too large to validate" + (
            "" if max_yaml >= MAX_YAML else f" without a token (with one, up to {MAX_YAML})"))
    try:
        import yaml
    except ImportError:
        return []
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        too_deep = _yaml_too_deep(yaml, text[3:end], loader)
        if too_deep:
            return [too_deep]
        data = yaml.load(text[3:end], Loader=loader)
    except yaml.YAMLError as error:
        return [f"The card's metadata is not valid YAML: {str(error)[:300]}"]
    if data is None:
        return []
    if not isinstance(data, dict):
        return ["The card's metadata must be a mapping"]
    errors = []
    for key in ("tags", "datasets", "metrics", "base_model", "license", "language"):
        value = data.get(key)
        if value is not None and not (isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))):
            errors.append(f"'{key}' must be a string or a list of strings")
    for key in ("pipeline_tag", "library_name"):
        if data.get(key) is not None and not isinstance(data[key], str):
            errors.append(f"'{key}' must be a string")
    index = data.get("model-index")
    if index is not None and not (isinstance(index, list) and all(isinstance(m, dict) and "name" in m for m in index)):
        errors.append("'model-index' must be a list of entries with a 'name'")
    return errors


def _yaml_too_deep(yaml, block: str, loader) -> str | None:
    """A message if collections nest deeper than ``MAX_YAML_DEPTH``, found from the parser's
    events before anything is built: building is recursive (libyaml's composer overflows the C
    stack near 25 000 levels and kills the process), the event parser is not."""
    depth = 0
    for event in yaml.parse(block, Loader=loader):
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                return f"The card's metadata is nested too deeply (more than {MAX_YAML_DEPTH} levels)"
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            depth -= 1
    return None


def _paths_from_body(raw: bytes, content_type: str) -> list[str]:
    """The ``paths`` of a paths-info request, sent as JSON or as a form."""
    if "json" in content_type:
        body = parse_json(raw)
        paths = body.get("paths", []) if isinstance(body, dict) else None
    else:
        try:
            paths = parse_qs(raw.decode("utf-8", "replace"), max_num_fields=MAX_PATHS + 1).get("paths", [])
        except ValueError:
            paths = None
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths) or len(paths) > MAX_PATHS:
        raise HubError(400, "Expected 'paths' as a list of strings")
    return paths


def _parse_range(header: str | None, size: int):
    """``(start, end)`` for one ``bytes=`` range, None for no/unsupported range, "invalid" if unsatisfiable."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first, _, last = header[6:].strip().partition("-")
    try:
        if first == "":
            n = int(last)
            return (max(0, size - n), size - 1) if n > 0 and size > 0 else "invalid"
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
    except ValueError:
        return None
    if start >= size or start > end:
        return "invalid"
    return start, end


def _lfs_suffixes(storage: Storage, repo_type: str, repo_id: str, commit: str) -> tuple[str, ...]:
    """File endings that the repo's ``.gitattributes`` sends to LFS (``*.ext filter=lfs`` lines)."""
    entry = storage.files(repo_type, repo_id, commit).get(".gitattributes")
    if entry is None or entry.size > 1024 * 1024:
        return ()
    text = storage.blob_path(entry.sha256).read_text("utf-8", "replace")
    return tuple(
        line.split()[0][1:] for line in text.splitlines() if line.startswith("*.") and "filter=lfs" in line and line.split()[0].count("*") == 1
    )


# -- entry points -----------------------------------------------------------------------
@dataclass
class HubHandle:
    """A running server: ``url``, ``port``, ``root``; ``stop()`` shuts it down."""

    url: str
    port: int
    root: Path
    token_file: Path | None
    _server: HubHTTPServer = field(repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def active_connections(self) -> int:
        """Connections being served now (a closed client's is gone once its thread has finished)."""
        return self._server.active_connections

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


def make_server(
    root,
    host: str = "127.0.0.1",
    port: int = 0,
    tokens: list[str] | None = None,
    verbose: bool = False,
    fsync: bool = True,
    **limits,
) -> tuple[HubHTTPServer, Path | None]:
    """Build the server (not yet serving); with no ``tokens`` one is read from or created under
    ``root``; ``limits``: fields of `Limits`."""
    root = Path(root)
    token_file = None
    if not tokens:
        token, token_file = load_or_create_token(root)
        tokens = [token]
    storage = Storage(root, fsync=fsync)
    limits = Limits(**limits)
    storage.collect_orphan_blobs(limits.orphan_blob_grace)
    server = HubHTTPServer((host, port), storage, list(tokens), _load_secret(storage.root), verbose, limits)
    return server, token_file


def start_server(root, host: str = "127.0.0.1", port: int = 0, tokens: list[str] | None = None, verbose: bool = False, **limits) -> HubHandle:
    """Serve in a background thread of this process (what the test fixture uses); ``limits``:
    fields of `Limits`."""
    server, token_file = make_server(root, host, port, tokens, verbose, **limits)
    thread = threading.Thread(target=server.serve_forever, name="hub_emo-hub", daemon=True)
    thread.start()
    actual = server.server_address[1]
    return HubHandle(f"http://{host}:{actual}", actual, Path(root), token_file, server, thread)


def serve(root, host: str = "127.0.0.1", port: int = 8080, tokens: list[str] | None = None, verbose: bool = False, **limits) -> int:
    """Serve in the foreground until interrupted or sent SIGTERM; ``limits``: fields of `Limits`."""
    server, token_file = make_server(root, host, port, tokens, verbose, **limits)
    url = f"http://{host}:{server.server_address[1]}"
    print(f"hub_emo Hub serving {Path(root).resolve()} at {url}", flush=True)
    if token_file is not None:
        print(f"token stored in {token_file} (mode 0600)", flush=True)
    print(f"use it with: HF_ENDPOINT={url}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", required=True, help="directory holding the repos (created if missing)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    parser.add_argument(
        "--token",
        action="append",
        default=None,
        help="a token that may write (repeatable); with none, one is created and stored under the root",
    )
    parser.add_argument("--verbose", action="store_true", help="log each request (never tokens)")
    parser.add_argument("--max-connections", type=int, default=MAX_CONNECTIONS, help=f"connections served at once (default {MAX_CONNECTIONS})")
    parser.add_argument(
        "--request-timeout", type=float, default=REQUEST_TIMEOUT,
        help=f"seconds for a request's headers, and a body's grace before {MIN_BODY_RATE} bytes/s apply (default {REQUEST_TIMEOUT:g})",
    )
    parser.add_argument("--xet-quota", type=int, default=None, help="bytes the stored Xet xorbs may take (default: no limit)")


def limits_from_args(args: argparse.Namespace) -> dict:
    """The `Limits` fields given on the command line (see `add_arguments`)."""
    return {"max_connections": args.max_connections, "request_timeout": args.request_timeout, "xet_quota": args.xet_quota}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hub_emo.hub.server", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    return serve(args.root, args.host, args.port, args.token, args.verbose, **limits_from_args(args))


if __name__ == "__main__":
    sys.exit(main())
