"""What the local Hub accepts, shared by its server and its storage (standard library only).

Repo types, repo ids, file paths and branch or tag names as the Hub allows them, the limits
on sizes and counts, and `HubError`: a refused request's HTTP status, the Hub's
``X-Error-Code`` and a message safe to send back. The server checks what a request names with
these, and the storage checks what it is asked to store with them too.
"""

from __future__ import annotations

import base64
import binascii
import re

REPO_TYPES = ("model", "dataset", "space")
DEFAULT_BRANCH = "main"
MAX_PATH_BYTES = 1024
MAX_PATH_DEPTH = 64
MAX_FILE_SIZE = 50 * 1024**3
MAX_FILES_PER_COMMIT = 100_000
#: Namespaces a repo cannot be created in: the first segment of the Hub's own URLs
#: (``/api/...``, ``/datasets/<ns>/<name>``, ``/spaces/...``, ``/kernels/...``, ``/buckets/...``;
#: clients also accept a ``models/`` prefix) and this server's upload routes. A repo there
#: could never be reached by its URL.
RESERVED_NAMESPACES = frozenset({"api", "models", "datasets", "spaces", "kernels", "buckets", "lfs-upload", "xet"})
# Used with fullmatch: ``$`` would also match before a final line feed ("api\\n").
_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?")
_REF = re.compile(r"[A-Za-z0-9._/-]{1,200}")
_COMMIT_ID = re.compile(r"[0-9a-f]{40}")


class HubError(Exception):
    """A refused request: HTTP status, the Hub's ``X-Error-Code`` and a safe message."""

    def __init__(self, status: int, message: str, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def repo_not_found(repo_id: str) -> HubError:
    return HubError(404, f"Repository not found: {repo_id}", "RepoNotFound")


def validate_repo_type(repo_type: str) -> str:
    if repo_type not in REPO_TYPES:
        raise HubError(400, f"Invalid repo type {repo_type!r}: expected one of {REPO_TYPES}")
    return repo_type


def validate_repo_id(repo_id: str) -> tuple[str, str]:
    """``namespace/name``, each a Hub-style name (letters, digits, ``-_.``, no ``..``)."""
    if not isinstance(repo_id, str) or len(repo_id) > 200:
        raise HubError(400, "Invalid repo id: expected 'namespace/name' of at most 96 characters each")
    parts = repo_id.split("/")
    if len(parts) != 2 or not all(_NAME.fullmatch(p) and ".." not in p and "--" not in p for p in parts):
        raise HubError(
            400,
            f"Invalid repo id {repo_id[:200]!r}: expected 'namespace/name' made of letters, digits, '-', '_', '.'"
            " (no '..' or '--', not starting or ending with '-' or '.')",
        )
    if parts[1].endswith(".git"):
        raise HubError(400, f"Invalid repo id {repo_id!r}: a name cannot end with '.git'")
    return parts[0], parts[1]


def validate_new_repo_id(repo_id: str) -> tuple[str, str]:
    """``validate_repo_id`` plus what only matters when a repo is created: reserved namespaces."""
    ns, name = validate_repo_id(repo_id)
    if ns.lower() in RESERVED_NAMESPACES:
        raise HubError(400, f"Invalid repo id {repo_id!r}: the namespace {ns!r} is reserved by the Hub's URLs")
    return ns, name


def validate_path(path: str) -> str:
    """A relative file path inside a repo: no ``..``, no absolute path, no NUL, bounded size."""
    if not isinstance(path, str) or not path:
        raise HubError(400, "Invalid path in repo: empty")
    if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise HubError(400, f"Invalid path in repo: longer than {MAX_PATH_BYTES} bytes")
    shown = path[:200]
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise HubError(400, f"Invalid path in repo {shown!r}: not valid UTF-8 (a lone surrogate)") from None
    if any(ord(c) < 32 or ord(c) == 127 for c in path) or "\\" in path:
        raise HubError(400, f"Invalid path in repo {shown!r}: control characters or backslashes")
    if path.startswith("/"):
        raise HubError(400, f"Invalid path in repo {shown!r}: absolute paths are not allowed")
    parts = path.split("/")
    if len(parts) > MAX_PATH_DEPTH or any(p in ("", ".", "..") for p in parts):
        raise HubError(400, f"Invalid path in repo {shown!r}: empty, '.' or '..' components are not allowed")
    if parts[0] == ".git":
        raise HubError(400, f"Invalid path in repo {shown!r}: '.git' is reserved")
    return path


def validate_ref_name(name: str) -> str:
    if not _REF.fullmatch(name or "") or ".." in name or name.startswith(("/", "-")) or name.endswith(("/", ".lock")):
        raise HubError(400, f"Invalid branch or tag name {str(name)[:200]!r}")
    if is_commit_id(name):
        raise HubError(400, f"Invalid branch or tag name {name!r}: it looks like a commit id")
    return name


def is_commit_id(text: str | None) -> bool:
    """A full commit id: 40 lowercase hex digits."""
    return bool(_COMMIT_ID.fullmatch(text or ""))


def decode_base64(content: str, path: str) -> bytes:
    try:
        return base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise HubError(400, f"File {path!r}: content is not valid base64") from None
