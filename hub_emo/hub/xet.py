"""The upload half of the Xet protocol, so that clients with ``hf_xet`` installed can push here.

huggingface_hub 2.x sends every LFS-sized file through Xet whenever ``hf_xet`` is installed:
it asks the Hub for a Xet write token and nothing else, so no answer of the Hub's can send it
back to the LFS batch API. This Hub therefore speaks Xet's upload side. A client sends xorbs
(runs of compressed chunks) and then a shard naming, for each file, the chunk ranges that make
it and its sha256. The server rebuilds each file, checks that sha256 and stores the file as an
ordinary blob: commits, downloads and clients that do not speak Xet see exactly what an LFS
upload would have left. Chunk and xorb hashes (BLAKE3) are not checked, as the standard library
has no BLAKE3; a rebuilt file is kept only under the sha256 of its bytes.

Formats: https://huggingface.co/docs/xet (xorb, shard, CAS API). Standard library only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import struct
import tempfile
import threading
import time
from pathlib import Path

if __package__:
    from .rules import MAX_FILE_SIZE, HubError
    from .storage import Storage
else:  # imported by ``python hub_emo/hub/server.py`` (see there)
    from rules import MAX_FILE_SIZE, HubError  # type: ignore[no-redef]
    from storage import Storage  # type: ignore[no-redef]

#: The CAS refuses xorbs over 64 MiB serialised; a little room for headers.
MAX_XORB_BYTES = 64 * 1024 * 1024 + 1024 * 1024
MAX_SHARD_BYTES = 64 * 1024 * 1024
MAX_CHUNK_BYTES = 128 * 1024
#: A shard names at most this many files (as many as a repo may hold).
MAX_SHARD_FILES = 100_000
#: Terms (chunk ranges) in all of a shard's files: a real one needs about one per xorb a file spans.
MAX_SHARD_TERMS = 200_000
#: Seconds a xorb is kept while its chunks have not all gone into files.
XORB_TTL = 24 * 3600
_ENTRY = 48
_BOOKEND = b"\xff" * 32
_SHARD_VERSION = 2
_WITH_VERIFICATION = 1 << 31
_WITH_METADATA = 1 << 30


def hash_hex(raw: bytes) -> str:
    """A 32-byte Xet hash as the CAS API spells it: each 8-byte word little-endian, in hex."""
    return "".join(f"{int.from_bytes(raw[i : i + 8], 'little'):016x}" for i in range(0, 32, 8))


def _valid_hex(value: str) -> str:
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise HubError(400, "Invalid Xet hash: expected 64 lowercase hex digits")
    return value


# -- chunk decoding ---------------------------------------------------------------------
def _lz4_extended(src: bytes, i: int, length: int) -> tuple[int, int]:
    """A length field of 15 goes on in the bytes at ``i`` (each 255 says another follows);
    returns (the whole length, the position after it)."""
    while True:
        extra = src[i]
        i += 1
        length += extra
        if extra != 255:
            return length, i


def _lz4_block_into(out: bytearray, src: bytes, limit: int) -> None:
    """Decode one LZ4 block onto ``out`` (matches may reach back into what ``out`` held)."""
    i, n = 0, len(src)
    while i < n:
        token, i = src[i], i + 1
        literals = token >> 4
        if literals == 15:
            literals, i = _lz4_extended(src, i, literals)
        if i + literals > n or len(out) + literals > limit:
            raise ValueError
        out += src[i : i + literals]
        i += literals
        if i >= n:
            break
        offset, i = src[i] | src[i + 1] << 8, i + 2
        length = token & 15
        if length == 15:
            length, i = _lz4_extended(src, i, length)
        length += 4
        if offset == 0 or offset > len(out) or len(out) + length > limit:
            raise ValueError
        start = len(out) - offset
        if length <= offset:
            out += out[start : start + length]
        else:  # the match overlaps what it writes: a repeating pattern
            pattern = bytes(out[start:])
            out += (pattern * (length // offset + 1))[:length]


_LZ4_MAGIC = b"\x04\x22\x4d\x18"


def lz4_frame_decompress(src: bytes, size: int) -> bytes:
    """Decode an LZ4 frame (the format xorb chunks use) of known decompressed ``size``.

    Checksums (xxHash32) are skipped: the standard library has no xxHash, and the sha256 of
    the rebuilt file is checked anyway.
    """
    out = bytearray()
    try:
        if src[:4] != _LZ4_MAGIC:
            raise ValueError
        flags = src[4]
        if flags >> 6 != 1 or flags & 1:  # version 01; no dictionary
            raise ValueError
        block_checksum, content_size = flags & 0x10, flags & 0x08
        pos = 7 + (8 if content_size else 0)
        while True:
            word = int.from_bytes(src[pos : pos + 4], "little")
            pos += 4
            if word == 0:
                break
            length = word & 0x7FFFFFFF
            block = src[pos : pos + length]
            if len(block) != length:
                raise ValueError
            if word & 0x80000000:  # stored uncompressed
                if len(out) + length > size:
                    raise ValueError
                out += block
            else:
                _lz4_block_into(out, block, size)
            pos += length + (4 if block_checksum else 0)
    except (IndexError, ValueError):
        raise HubError(400, "Malformed xorb: an LZ4 chunk does not decode") from None
    if len(out) != size:
        raise HubError(400, "Malformed xorb: a chunk decodes to the wrong size")
    return bytes(out)


def _ungroup4(data: bytes) -> bytes:
    """Undo Xet's byte grouping: four planes (byte 0 of every word, byte 1, ...) back to words."""
    n = len(data)
    sizes = [n // 4 + (1 if k < n % 4 else 0) for k in range(4)]
    out = bytearray(n)
    start = 0
    for k, size in enumerate(sizes):
        out[k::4] = data[start : start + size]
        start += size
    return bytes(out)


def decode_chunk(scheme: int, data: bytes, size: int) -> bytes:
    """One chunk's bytes from its stored form; decoding never produces more than ``size`` bytes."""
    if scheme == 0:
        chunk = data
    elif scheme == 1:
        chunk = lz4_frame_decompress(data, size)
    elif scheme == 2:
        chunk = _ungroup4(lz4_frame_decompress(data, size))
    else:
        raise HubError(400, f"Malformed xorb: unknown compression scheme {scheme}")
    if len(chunk) != size:
        raise HubError(400, "Malformed xorb: a chunk has the wrong size")
    return chunk


def xorb_index(f, count: int | None) -> list[tuple[int, int, int, int]]:
    """``(offset of the stored bytes, stored size, scheme, decoded size)`` of the first ``count``
    chunks of the xorb open as ``f``, from their 8-byte headers alone (nothing is decoded).
    ``count=None``: every chunk, up to the footer (whose first byte is not a chunk version)."""
    index, pos, end = [], 0, os.fstat(f.fileno()).st_size
    while count is None or len(index) < count:
        f.seek(pos)
        header = f.read(8)
        if count is None and (len(header) < 8 or header[0] != 0 or pos + 8 + int.from_bytes(header[1:4], "little") > end):
            return index
        if len(header) < 8:
            raise HubError(400, f"Malformed xorb: it holds fewer than the {count} chunks a shard names")
        version, stored, scheme, size = header[0], int.from_bytes(header[1:4], "little"), header[4], int.from_bytes(header[5:8], "little")
        if version != 0 or size > MAX_CHUNK_BYTES or stored > MAX_CHUNK_BYTES + 1024:
            raise HubError(400, "Malformed xorb: bad chunk header")
        index.append((pos + 8, stored, scheme, size))
        pos += 8 + stored
    return index


# -- shards -----------------------------------------------------------------------------
def parse_shard(data: bytes) -> list[tuple[list[tuple[str, int, int, int]], bytes | None]]:
    """The files a shard describes: for each, its ``(xorb, first chunk, end chunk, bytes)`` terms
    and its sha256 (when the shard carries one, in the same word order as every Xet hash).
    At most ``MAX_SHARD_FILES`` files and ``MAX_SHARD_TERMS`` terms: each becomes Python
    objects worth several times its 48 bytes."""
    if len(data) < 48 or struct.unpack_from("<Q", data, 32)[0] != _SHARD_VERSION:
        raise HubError(400, "Malformed shard: bad header")
    files, pos, terms_left = [], 48, MAX_SHARD_TERMS
    try:
        while True:
            header = data[pos : pos + _ENTRY]
            if len(header) < _ENTRY:
                raise HubError(400, "Malformed shard: the file section has no end")
            pos += _ENTRY
            if header[:32] == _BOOKEND:
                return files
            flags, count = struct.unpack_from("<II", header, 32)
            terms_left -= count
            if terms_left < 0 or len(files) >= MAX_SHARD_FILES:
                raise HubError(400, f"Shard: more than {MAX_SHARD_FILES} files or {MAX_SHARD_TERMS} terms")
            terms = []
            for _ in range(count):
                xorb, _flags, size, first, end = struct.unpack_from("<32sIIII", data, pos)
                if end <= first or size <= 0:
                    raise HubError(400, "Malformed shard: an empty or inverted chunk range")
                terms.append((hash_hex(xorb), first, end, size))
                pos += _ENTRY
            if flags & _WITH_VERIFICATION:
                pos += _ENTRY * count
            sha256 = None
            if flags & _WITH_METADATA:
                sha256 = data[pos : pos + 32]
                pos += _ENTRY
            files.append((terms, sha256))
    except struct.error:
        raise HubError(400, "Malformed shard: truncated") from None


class XetStore:
    """Xorbs under ``root/xet/xorbs``; a shard turns them into the storage's ordinary blobs.

    Once every chunk of a xorb is inside rebuilt files, the xorb is deleted and a map under
    ``root/xet/maps`` (chunk -> blob, offset, size) stands in for it, so the bytes are kept
    once: a later shard naming it (a client deduplicating against what it pushed before) is
    rebuilt from those blobs. Xorbs take at most ``quota`` bytes (None: no limit); one whose
    chunks never all went into files is deleted ``ttl`` seconds after its upload (at start-up,
    and whenever the quota is reached). A xorb name is never overwritten: the first upload stays.
    """

    def __init__(self, storage: Storage, quota: int | None = None, ttl: float = XORB_TTL):
        self.storage, self.quota, self.ttl = storage, quota, ttl
        self.xorbs = storage.root / "xet" / "xorbs"
        self.maps = storage.root / "xet" / "maps"
        for folder in (self.xorbs, self.maps):
            folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._used = self._reserved = 0
        self.collect_expired()

    @property
    def used(self) -> int:
        """Bytes the stored xorbs take."""
        return self._used

    def _xorb_path(self, name: str) -> Path:
        name = _valid_hex(name)
        return self.xorbs / name[:2] / name

    def _map_path(self, name: str) -> Path:
        name = _valid_hex(name)
        return self.maps / name[:2] / f"{name}.json"

    def collect_expired(self) -> None:
        """Delete xorbs older than ``ttl`` and count the bytes the others take."""
        cutoff, used = time.time() - self.ttl, 0
        for path in self.xorbs.glob("*/*"):
            with contextlib.suppress(FileNotFoundError):
                stat = path.stat()
                if stat.st_mtime < cutoff:
                    path.unlink()
                else:
                    used += stat.st_size
        with self._lock:
            self._used = used

    def _reserve(self, size: int) -> None:
        for attempt in range(2):
            with self._lock:
                if self.quota is None or self._used + self._reserved + size <= self.quota:
                    self._reserved += size
                    return
            if attempt == 0:
                self.collect_expired()
        raise HubError(507, f"The Xet store is full (quota {self.quota} bytes); retry later")

    def put_xorb(self, name: str, reader, length: int | None) -> bool:
        """Store a xorb streamed from ``reader`` (staged, then linked into place); False, with
        the body read and dropped, if one of that name is already here. ``length``: the
        declared body size, if known.

        Names are not checked (BLAKE3 is not in the standard library), so a name is never
        overwritten: files rebuilt from it, and files that will share its chunks, stay valid.
        """
        path = self._xorb_path(name)
        if length is not None and length > MAX_XORB_BYTES:
            raise HubError(413, f"Xorb larger than {MAX_XORB_BYTES} bytes")
        if path.is_file() or self._map_path(name).is_file():
            _copy(reader, None)
            return False
        reserved = MAX_XORB_BYTES if length is None else length
        self._reserve(reserved)
        try:
            with self.storage.staged("xorb-", path, exclusive=True) as staged:
                total = _copy(reader, staged.file)
            with self._lock:
                self._used += total
        finally:
            with self._lock:
                self._reserved -= reserved
        return True

    def put_shard(self, data: bytes) -> list[str]:
        """Rebuild every file the shard names and store it; returns their sha256s.

        Memory and work are bounded by what the shard declares: each term's chunk sizes are
        read from the chunk headers and must add up to the term's declared size before any
        chunk is decoded, and decoded chunks go straight to disk, one at a time. A file whose
        blob is already stored is not rebuilt. The files reach the disk with one flush for
        the whole shard, not an fsync each.
        """
        files = parse_shard(data)
        needed: dict[str, int] = {}
        for terms, _ in files:
            for name, _first, end, _length in terms:
                needed[name] = max(needed.get(name, 0), end)
        rebuilt: list[tuple[str, str | None, list]] = []
        try:
            with contextlib.ExitStack() as stack:
                sources = {name: self._chunk_sources(stack, name, count) for name, count in needed.items()}
                for terms, expected in files:
                    rebuilt.append(self._rebuild(terms, expected, sources))
            self.storage.publish([(tmp, self.storage.blob_path(sha)) for sha, tmp, _ in rebuilt if tmp])
        except BaseException:
            for _, tmp, _ in rebuilt:
                if tmp:
                    with contextlib.suppress(OSError):
                        os.unlink(tmp)
            raise
        self._record([placed for _, _, placements in rebuilt for placed in placements])
        return [sha for sha, _, _ in rebuilt]

    def _chunk_sources(self, stack: contextlib.ExitStack, name: str, count: int) -> list[tuple]:
        """``(open file, offset, stored size, scheme, size, in a xorb)`` of the first ``count``
        chunks of a xorb: in the xorb while it is stored, else in the blobs its map names
        (None for a chunk the map lacks)."""
        try:
            f = stack.enter_context(open(self._xorb_path(name), "rb"))
        except FileNotFoundError:
            pass
        else:
            return [(f, *entry, True) for entry in xorb_index(f, count)]
        placed = self._load_map(name)
        blobs: dict[str, object] = {}
        sources: list[tuple | None] = []
        for i in range(count):
            if str(i) not in placed:  # a chunk never used in a file, its xorb since expired
                sources.append(None)
                continue
            sha, offset, size = placed[str(i)]
            if sha not in blobs:
                try:
                    blobs[sha] = stack.enter_context(open(self.storage.blob_path(sha), "rb"))
                except FileNotFoundError:
                    raise HubError(400, f"Shard names xorb {name}, whose chunks are no longer stored") from None
            sources.append((blobs[sha], offset, size, 0, size, False))
        return sources

    def _rebuild(self, terms, expected: bytes | None, sources: dict) -> tuple[str, str | None, list]:
        """One file: its sha256, the temporary file holding it (None if its blob was already
        stored) and where each chunk read from a stored xorb landed in it."""
        if expected is not None and self.storage.has_blob(hash_hex(expected)):
            return hash_hex(expected), None, []  # blobs are named by their verified sha256
        for name, first, end, length in terms:
            if None in sources[name][first:end]:
                raise HubError(400, f"Shard names chunks {first}-{end} of xorb {name}, which are no longer stored")
            held = sum(source[4] for source in sources[name][first:end])
            if held != length:
                raise HubError(400, f"Shard: chunks {first}-{end} of xorb {name} hold {held} bytes, not {length}")
        if sum(length for *_, length in terms) > MAX_FILE_SIZE:
            raise HubError(413, f"Shard: a file larger than {MAX_FILE_SIZE} bytes")
        digest, placements, offset = hashlib.sha256(), [], 0
        fd, tmp = tempfile.mkstemp(dir=self.storage.tmp, prefix="xet-file-")
        try:
            with os.fdopen(fd, "wb") as out:
                for name, first, end, _length in terms:
                    for i in range(first, end):
                        f, at, stored, scheme, size, in_xorb = sources[name][i]
                        f.seek(at)
                        chunk = decode_chunk(scheme, f.read(stored), size)
                        digest.update(chunk)
                        out.write(chunk)
                        if in_xorb:
                            placements.append((name, i, offset, size))
                        offset += size
            sha256 = digest.hexdigest()
            if expected is not None and hash_hex(expected) != sha256:
                raise HubError(400, f"Shard: a file rebuilt from its chunks has sha256 {sha256}, not the {hash_hex(expected)} it claims")
        except BaseException:
            os.unlink(tmp)
            raise
        return sha256, tmp, [(name, i, sha256, at, size) for name, i, at, size in placements]

    def _load_map(self, name: str) -> dict:
        try:
            return json.loads(self._map_path(name).read_text())
        except FileNotFoundError:
            raise HubError(400, f"Shard names xorb {name}, which was never uploaded") from None

    def _record(self, placements: list[tuple[str, int, str, int, int]]) -> None:
        """Note where each chunk of a stored xorb now lies in a blob; delete every xorb whose
        chunks all lie in blobs (its map replaces it)."""
        by_xorb: dict[str, dict] = {}
        for name, i, sha, offset, size in placements:
            by_xorb.setdefault(name, {})[str(i)] = [sha, offset, size]
        for name, placed in by_xorb.items():
            path = self._xorb_path(name)
            with self._lock:
                with contextlib.suppress(FileNotFoundError):
                    placed = {**json.loads(self._map_path(name).read_text()), **placed}
                self._map_path(name).parent.mkdir(exist_ok=True)
                self.storage._write_atomic(self._map_path(name), json.dumps(placed).encode())
                try:
                    with open(path, "rb") as f:
                        count = len(xorb_index(f, None))
                    if all(str(i) in placed for i in range(count)):
                        size = path.stat().st_size
                        path.unlink()
                        self._used -= size
                except FileNotFoundError:
                    pass


def _copy(reader, out) -> int:
    """Copy a xorb's body from ``reader`` to ``out`` (None: read and drop it); its size."""
    buf = memoryview(bytearray(1024 * 1024))
    total = 0
    while n := reader.readinto(buf):
        total += n
        if total > MAX_XORB_BYTES:
            raise HubError(413, f"Xorb larger than {MAX_XORB_BYTES} bytes")
        if out is not None:
            out.write(buf[:n])
    return total
