"""Durable, content-addressed storage behind the local Hub (standard library only); what it
accepts (names, paths, limits) and the errors it raises are `rules`'.

Layout under ``root``::

    blobs/ab/<sha256>            file contents, written once, named by their SHA-256
    repos/<type>s/<ns>/<name>/   repo.json (visibility), refs.json (branches, tags),
                                 commits/<id>.json (one full snapshot: path -> blob)
    tmp/                         uploads in progress (emptied at start-up)
    xet/                         Xet xorbs, and maps of those replaced by blobs (see xet.py)

Blobs that no commit names are deleted at start-up once old enough (`collect_orphan_blobs`).

A commit is atomic: its blobs are written first, then its commit record, and only then
``refs.json`` is swapped with ``os.replace`` while the repo's lock is held (a thread lock
plus ``flock``, so two server processes on one root are safe too). A client or a server
dying at any point leaves the branch on its previous commit; at worst unreferenced blobs
remain. Every commit keeps a full snapshot, so any earlier commit id can still be read.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import queue
import re
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

if __package__:
    from .rules import (DEFAULT_BRANCH, MAX_FILE_SIZE, MAX_FILES_PER_COMMIT, HubError, is_commit_id, repo_not_found,
                        validate_new_repo_id, validate_path, validate_ref_name, validate_repo_id, validate_repo_type)
else:  # imported by ``python hub_emo/hub/server.py`` (see there)
    from rules import (DEFAULT_BRANCH, MAX_FILE_SIZE, MAX_FILES_PER_COMMIT,  # type: ignore[no-redef]
                       HubError, is_commit_id, repo_not_found, validate_new_repo_id, validate_path,
                       validate_ref_name, validate_repo_id, validate_repo_type)

_SHA256 = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1024 * 1024
_FLUSH_EVERY = 32 * 1024 * 1024
GITATTRIBUTES = b"""*.bin filter=lfs diff=lfs merge=lfs -text
*.ckpt filter=lfs diff=lfs merge=lfs -text
*.h5 filter=lfs diff=lfs merge=lfs -text
*.npy filter=lfs diff=lfs merge=lfs -text
*.onnx filter=lfs diff=lfs merge=lfs -text
*.parquet filter=lfs diff=lfs merge=lfs -text
*.pt filter=lfs diff=lfs merge=lfs -text
*.pth filter=lfs diff=lfs merge=lfs -text
*.safetensors filter=lfs diff=lfs merge=lfs -text
*.wav filter=lfs diff=lfs merge=lfs -text
*.flac filter=lfs diff=lfs merge=lfs -text
*.mp3 filter=lfs diff=lfs merge=lfs -text
*.arrow filter=lfs diff=lfs merge=lfs -text
"""


def git_blob_id(data: bytes) -> str:
    """The git object id of a blob, which the Hub reports as a file's ``oid``/``ETag``."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


@dataclass(frozen=True)
class Entry:
    """One file in a commit."""

    path: str
    sha256: str
    size: int
    oid: str  # git blob id (of the pointer file for LFS entries)
    lfs: bool

    def as_json(self) -> dict:
        return {"sha256": self.sha256, "size": self.size, "oid": self.oid, "lfs": self.lfs}


@dataclass
class Operation:
    """One change inside a commit: ``add`` (path, sha256, size, lfs) or ``delete``/``delete_folder``."""

    kind: str
    path: str
    sha256: str | None = None
    size: int | None = None
    lfs: bool = False


def fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@dataclass
class StagedFile:
    """A file being written by `Storage.staged`: its open ``file`` and the ``target`` it will become."""

    file: BinaryIO
    target: Path | None


class Storage:
    """Repos, commits, refs and blobs on disk; safe for threads and for several processes."""

    def __init__(self, root: str | os.PathLike, fsync: bool = True):
        self.root = Path(root).resolve()
        self.fsync = fsync
        self.blobs = self.root / "blobs"
        self.repos = self.root / "repos"
        self.tmp = self.root / "tmp"
        for d in (self.blobs, self.repos, self.tmp):
            d.mkdir(parents=True, exist_ok=True)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._clean_tmp()

    # -- files ------------------------------------------------------------------------
    def _clean_tmp(self) -> None:
        """Drop uploads left by a process that died (only those older than a minute)."""
        cutoff = time.time() - 60
        for entry in os.scandir(self.tmp):
            with contextlib.suppress(OSError):
                if entry.stat().st_mtime < cutoff:
                    if entry.is_dir():
                        shutil.rmtree(entry.path, ignore_errors=True)
                    else:
                        os.unlink(entry.path)

    @contextlib.contextmanager
    def staged(self, prefix: str, target: Path | None = None, *, buffering: int = -1, exclusive: bool = False) -> Iterator[StagedFile]:
        """Write a file under ``tmp/``, renamed to ``target`` only once complete and on disk.

        Whatever stops the write (an error, a dying client, a dying process) leaves ``target``
        as it was: the rename happens last, after the fsync, and the temporary file is removed
        on any error. ``target`` may be set while writing, when the name depends on the bytes.
        ``exclusive``: an existing ``target`` is kept and the new file dropped (a hard link
        never replaces, so two writers racing cannot overwrite each other either).
        """
        fd, tmp = tempfile.mkstemp(dir=self.tmp, prefix=prefix)
        try:
            with os.fdopen(fd, "wb", buffering=buffering) as f:
                staged = StagedFile(f, target)
                yield staged
                if self.fsync:
                    f.flush()
                    os.fsync(f.fileno())
            if staged.target is None:
                raise RuntimeError("a staged file was written without a target")
            staged.target.parent.mkdir(exist_ok=True)
            if exclusive:
                with contextlib.suppress(FileExistsError):
                    os.link(tmp, staged.target)
                os.unlink(tmp)
            else:
                os.replace(tmp, staged.target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        if self.fsync:
            fsync_dir(staged.target.parent)

    def publish(self, finished: list[tuple[str, Path]]) -> None:
        """Rename finished temporary files to their targets, with one flush of the disks before
        (their bytes) and one after (their names): an fsync per file cost 1.5 ms each, and a
        shard can name thousands of files."""
        if not finished:
            return
        if self.fsync:
            os.sync()
        for tmp, target in finished:
            target.parent.mkdir(exist_ok=True)
            os.replace(tmp, target)
        if self.fsync:
            os.sync()

    def collect_orphan_blobs(self, grace: float) -> int:
        """Delete blobs that no commit of any repo names and that are older than ``grace``
        seconds (younger ones may be waiting for their commit); returns how many. Run at
        start-up: a second server on the same root could be committing an upload older than
        ``grace`` that a client found already present, so keep ``grace`` long."""
        named = set()
        for record in self.repos.glob("*/*/*/commits/*.json"):
            with contextlib.suppress(OSError, ValueError):
                named.update(entry["sha256"] for entry in json.loads(record.read_text())["files"].values())
        cutoff, deleted = time.time() - grace, 0
        for blob in self.blobs.glob("*/*"):
            with contextlib.suppress(FileNotFoundError):
                if blob.name not in named and blob.stat().st_mtime < cutoff:
                    blob.unlink()
                    deleted += 1
        return deleted

    def _write_atomic(self, target: Path, data: bytes) -> None:
        with self.staged("w-", target) as staged:
            staged.file.write(data)

    def blob_path(self, sha256: str) -> Path:
        if not _SHA256.fullmatch(sha256 or ""):
            raise HubError(400, "Invalid object id: expected a sha256 in hex")
        return self.blobs / sha256[:2] / sha256

    def has_blob(self, sha256: str) -> bool:
        return self.blob_path(sha256).is_file()

    def put_bytes(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        path = self.blob_path(sha)
        if not path.is_file():
            self._write_atomic(path, data)
        return sha

    def put_stream(self, reader: BinaryIO, size: int, sha256: str) -> None:
        """Store ``size`` bytes read from ``reader``; they must hash to ``sha256``.

        The bytes go to a temporary file first and are renamed into place only once
        complete, verified and on disk (fsync), so an interrupted upload never becomes a
        blob. Receiving and writing, hashing, and flushing to disk run side by side
        (hashlib and fdatasync release the GIL): the final fsync then finds little left
        to write, and the hash is done when the last byte arrives.
        """
        target = self.blob_path(sha256)
        if size < 0 or size > MAX_FILE_SIZE:
            raise HubError(400, f"Invalid object size {size}")
        with (self.staged("upload-", target, buffering=0) as staged, _Digester() as digest,
              _Flusher(staged.file.fileno(), self.fsync) as flusher):
            left = size
            while left:
                view = digest.free_buffer()
                n = reader.readinto(view[: min(left, _CHUNK)])
                if not n:
                    raise HubError(400, f"Upload of object {sha256} ended after {size - left} of {size} bytes")
                staged.file.write(view[:n])
                digest.update(view, n)
                flusher.wrote(n)
                left -= n
            if digest.hexdigest() != sha256:
                raise HubError(400, f"Uploaded content does not match its sha256 {sha256}")

    # -- repos ------------------------------------------------------------------------
    def _repo_dir(self, repo_type: str, repo_id: str) -> Path:
        ns, name = validate_repo_id(repo_id)
        return self.repos / f"{validate_repo_type(repo_type)}s" / ns / name

    @contextlib.contextmanager
    def _lock(self, repo_type: str, repo_id: str) -> Iterator[Path]:
        repo = self._repo_dir(repo_type, repo_id)
        key = str(repo)
        with self._locks_guard:
            lock = self._locks.setdefault(key, threading.Lock())
        lock_file = self.repos / f"{repo_type}s" / f".{repo_id.replace('/', '__')}.lock"
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        with lock, open(lock_file, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield repo
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def repo_meta(self, repo_type: str, repo_id: str) -> dict:
        repo = self._repo_dir(repo_type, repo_id)
        try:
            return json.loads((repo / "repo.json").read_text())
        except FileNotFoundError:
            raise repo_not_found(repo_id) from None

    def create_repo(self, repo_type: str, repo_id: str, private: bool, author: str) -> bool:
        """Create a repo with the Hub's initial commit (``.gitattributes``); False if it exists."""
        validate_new_repo_id(repo_id)
        with self._lock(repo_type, repo_id) as repo:
            if (repo / "repo.json").is_file():
                return False
            staging = self.tmp / f"repo-{uuid.uuid4().hex}"
            (staging / "commits").mkdir(parents=True)
            now = _now()
            meta = {"id": repo_id, "type": repo_type, "private": bool(private), "createdAt": now}
            sha = self.put_bytes(GITATTRIBUTES)
            files = {".gitattributes": Entry(".gitattributes", sha, len(GITATTRIBUTES), git_blob_id(GITATTRIBUTES), False)}
            record = self._commit_record([], files, "initial commit", "", author, now)
            (staging / "commits" / f"{record['id']}.json").write_text(json.dumps(record))
            (staging / "refs.json").write_text(json.dumps({"branches": {DEFAULT_BRANCH: record["id"]}, "tags": {}}))
            (staging / "repo.json").write_text(json.dumps(meta))
            repo.parent.mkdir(parents=True, exist_ok=True)
            if repo.exists():  # a directory without repo.json: left by an interrupted delete
                shutil.rmtree(repo)
            os.replace(staging, repo)
            if self.fsync:
                fsync_dir(repo.parent)
            return True

    def delete_repo(self, repo_type: str, repo_id: str) -> None:
        with self._lock(repo_type, repo_id) as repo:
            if not (repo / "repo.json").is_file():
                raise repo_not_found(repo_id)
            trash = self.tmp / f"deleted-{uuid.uuid4().hex}"
            os.replace(repo, trash)
        shutil.rmtree(trash, ignore_errors=True)

    def set_private(self, repo_type: str, repo_id: str, private: bool) -> None:
        with self._lock(repo_type, repo_id) as repo:
            meta = self.repo_meta(repo_type, repo_id)
            meta["private"] = bool(private)
            self._write_atomic(repo / "repo.json", json.dumps(meta).encode())

    # -- refs and commits -------------------------------------------------------------
    def refs(self, repo_type: str, repo_id: str) -> dict:
        self.repo_meta(repo_type, repo_id)
        return json.loads((self._repo_dir(repo_type, repo_id) / "refs.json").read_text())

    def resolve(self, repo_type: str, repo_id: str, revision: str) -> str:
        """A branch, tag or full commit id -> commit id (404 ``RevisionNotFound`` otherwise)."""
        refs = self.refs(repo_type, repo_id)
        if revision in refs["branches"]:
            return refs["branches"][revision]
        if revision in refs["tags"]:
            return refs["tags"][revision]
        if is_commit_id(revision) and (
            self._repo_dir(repo_type, repo_id) / "commits" / f"{revision}.json"
        ).is_file():
            return revision
        raise HubError(404, f"Revision not found: {str(revision)[:100]!r}", "RevisionNotFound")

    def commit_record(self, repo_type: str, repo_id: str, commit_id: str) -> dict:
        path = self._repo_dir(repo_type, repo_id) / "commits" / f"{commit_id}.json"
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            raise HubError(404, f"Revision not found: {commit_id}", "RevisionNotFound") from None

    def files(self, repo_type: str, repo_id: str, commit_id: str) -> dict[str, Entry]:
        record = self.commit_record(repo_type, repo_id, commit_id)
        return {p: Entry(p, **e) for p, e in record["files"].items()}

    def history(self, repo_type: str, repo_id: str, commit_id: str) -> Iterator[dict]:
        """Commits reachable from ``commit_id`` through first parents, newest first."""
        while commit_id:
            record = self.commit_record(repo_type, repo_id, commit_id)
            yield record
            commit_id = record["parents"][0] if record["parents"] else None

    @staticmethod
    def _commit_record(parents: list[str], files: dict[str, Entry], title: str, message: str, author: str, date: str) -> dict:
        record = {
            "parents": parents,
            "title": title,
            "message": message,
            "author": author,
            "date": date,
            "files": {p: files[p].as_json() for p in sorted(files)},
        }
        record["id"] = hashlib.sha1(json.dumps(record, sort_keys=True).encode()).hexdigest()
        return record

    def commit(
        self,
        repo_type: str,
        repo_id: str,
        branch: str,
        operations: Iterable[Operation],
        title: str,
        message: str = "",
        author: str = "user",
        parent_commit: str | None = None,
    ) -> str:
        """Apply ``operations`` on top of ``branch`` and move it, atomically; returns the commit id.

        Blobs named by the operations must already be stored (``put_bytes``/``put_stream``).
        """
        operations = list(operations)
        if parent_commit is not None and not is_commit_id(parent_commit):
            raise HubError(400, "Invalid parentCommit: expected a 40-character commit id in hex")
        for op in operations:
            validate_path(op.path)
            if op.kind == "add" and not self.has_blob(op.sha256 or ""):
                raise HubError(400, f"File {op.path!r}: its content (sha256 {op.sha256}) was never uploaded")
        with self._lock(repo_type, repo_id) as repo:
            refs = self.refs(repo_type, repo_id)
            if branch not in refs["branches"]:
                raise HubError(404, f"Revision not found: branch {branch[:100]!r}", "RevisionNotFound")
            head = refs["branches"][branch]
            if parent_commit is not None and parent_commit != head:
                raise HubError(412, f"A commit has happened since {parent_commit}: the branch is now at {head}")
            files = self.files(repo_type, repo_id, head)
            for op in operations:
                if op.kind == "add":
                    parents = op.path.split("/")
                    if any("/".join(parents[:i]) in files for i in range(1, len(parents))) or any(
                        p.startswith(op.path + "/") for p in files
                    ):
                        raise HubError(400, f"File {op.path!r} conflicts with a folder or file of the same name")
                    oid = git_blob_id(lfs_pointer(op.sha256, op.size)) if op.lfs else _git_blob_id_of_file(self.blob_path(op.sha256))
                    files[op.path] = Entry(op.path, op.sha256, op.size, oid, op.lfs)
                elif op.kind == "delete":
                    if files.pop(op.path, None) is None:
                        raise HubError(404, f"File to delete not found: {op.path!r}", "EntryNotFound")
                elif op.kind == "delete_folder":
                    prefix = op.path.rstrip("/") + "/"
                    for p in [p for p in files if p.startswith(prefix)]:
                        del files[p]
                else:
                    raise HubError(400, f"Unknown operation {op.kind!r}")
            if len(files) > MAX_FILES_PER_COMMIT:
                raise HubError(400, f"Too many files in one repo (more than {MAX_FILES_PER_COMMIT})")
            record = self._commit_record([head], files, title, message, author, _now())
            self._write_atomic(repo / "commits" / f"{record['id']}.json", json.dumps(record).encode())
            refs["branches"][branch] = record["id"]
            self._write_atomic(repo / "refs.json", json.dumps(refs).encode())
            return record["id"]

    def set_ref(self, repo_type: str, repo_id: str, kind: str, name: str, commit_id: str | None, exist_ok: bool = False) -> None:
        """Create (``commit_id``) or delete (``None``) a branch or tag (``kind``: branches/tags)."""
        validate_ref_name(name)
        with self._lock(repo_type, repo_id) as repo:
            refs = self.refs(repo_type, repo_id)
            table = refs[kind]
            if commit_id is None:
                if name not in table:
                    raise HubError(404, f"Revision not found: {name!r}", "RevisionNotFound")
                if kind == "branches" and name == DEFAULT_BRANCH:
                    raise HubError(403, "The default branch cannot be deleted")
                del table[name]
            else:
                if name in table or name in refs["branches"] or name in refs["tags"]:
                    if exist_ok:
                        return
                    raise HubError(409, f"Reference already exists: {name!r}")
                table[name] = commit_id
            self._write_atomic(repo / "refs.json", json.dumps(refs).encode())


def _git_blob_id_of_file(path: Path) -> str:
    size = path.stat().st_size
    digest = hashlib.sha1(b"blob %d\0" % size)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class _Digester:
    """SHA-256 of a stream in a thread of its own, fed with rotating buffers.

    ``free_buffer()`` hands out a buffer the hashing thread is done with; ``update(view,
    n)`` queues its first ``n`` bytes. hashlib releases the GIL on large updates, so the
    hash of one chunk is computed while the next is received and written.
    """

    def __init__(self, buffers: int = 4):
        self._sha = hashlib.sha256()
        self._free: queue.Queue = queue.Queue()
        self._work: queue.Queue = queue.Queue()
        for _ in range(buffers):
            self._free.put(memoryview(bytearray(_CHUNK)))
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="hub_emo-sha256", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._work.get()) is not None:
            view, n = item
            try:
                self._sha.update(view[:n])
            except BaseException as error:  # pragma: no cover - hashlib does not fail on bytes
                self._error = error
            self._free.put(view)

    def free_buffer(self) -> memoryview:
        return self._free.get()

    def update(self, view: memoryview, n: int) -> None:
        self._work.put((view, n))

    def hexdigest(self) -> str:
        self._close()
        if self._error is not None:
            raise self._error
        return self._sha.hexdigest()

    def _close(self) -> None:
        if self._thread.is_alive():
            self._work.put(None)
            self._thread.join()

    def __enter__(self) -> _Digester:
        return self

    def __exit__(self, *exc) -> None:
        self._close()


class _Flusher:
    """Pushes a file being written to disk in the background, every ``_FLUSH_EVERY`` bytes.

    Durability needs an fsync before the rename; started early, the disk writes overlap
    with receiving and that final fsync (`Storage.staged`'s) has only the tail left.
    """

    def __init__(self, fd: int, enabled: bool):
        self.fd, self.enabled, self._pending, self._thread = fd, enabled, 0, None

    def wrote(self, n: int) -> None:
        self._pending += n
        if self.enabled and self._pending >= _FLUSH_EVERY and (self._thread is None or not self._thread.is_alive()):
            self._pending = 0
            self._thread = threading.Thread(target=_fdatasync, args=(self.fd,), name="hub_emo-flush", daemon=True)
            self._thread.start()

    def __enter__(self) -> _Flusher:
        return self

    def __exit__(self, *exc) -> None:
        if self._thread is not None:  # never close the file under a running fdatasync
            self._thread.join()


def _fdatasync(fd: int) -> None:
    with contextlib.suppress(OSError):  # the final fsync reports errors
        getattr(os, "fdatasync", os.fsync)(fd)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
