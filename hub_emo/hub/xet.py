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
import struct
from pathlib import Path

if __package__:
    from .storage import MAX_FILE_SIZE, HubError, Storage
else:  # imported by ``python hub_emo/hub/server.py`` (see there)
    from storage import MAX_FILE_SIZE, HubError, Storage  # type: ignore[no-redef]

#: The CAS refuses xorbs over 64 MiB serialised; a little room for headers.
MAX_XORB_BYTES = 64 * 1024 * 1024 + 1024 * 1024
MAX_SHARD_BYTES = 64 * 1024 * 1024
MAX_CHUNK_BYTES = 128 * 1024
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


def xorb_index(f, count: int) -> list[tuple[int, int, int, int]]:
    """``(offset of the stored bytes, stored size, scheme, decoded size)`` of the first ``count``
    chunks of the xorb open as ``f``, from their 8-byte headers alone (nothing is decoded)."""
    index, pos = [], 0
    while len(index) < count:
        f.seek(pos)
        header = f.read(8)
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
    and its sha256 (when the shard carries one, in the same word order as every Xet hash)."""
    if len(data) < 48 or struct.unpack_from("<Q", data, 32)[0] != _SHARD_VERSION:
        raise HubError(400, "Malformed shard: bad header")
    files, pos = [], 48
    try:
        while True:
            header = data[pos : pos + _ENTRY]
            if len(header) < _ENTRY:
                raise HubError(400, "Malformed shard: the file section has no end")
            pos += _ENTRY
            if header[:32] == _BOOKEND:
                return files
            flags, count = struct.unpack_from("<II", header, 32)
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
    """Xorbs under ``root/xet/xorbs``; a shard turns them into the storage's ordinary blobs."""

    def __init__(self, storage: Storage):
        self.storage = storage
        self.xorbs = storage.root / "xet" / "xorbs"
        self.xorbs.mkdir(parents=True, exist_ok=True)

    def _xorb_path(self, name: str) -> Path:
        name = _valid_hex(name)
        return self.xorbs / name[:2] / name

    def put_xorb(self, name: str, reader, length: int | None) -> bool:
        """Store a xorb streamed from ``reader`` (staged, then renamed into place);
        False if one of that name was already here. ``length``: the declared body size, if known.

        Names are not checked (BLAKE3), so the last upload of a name wins: a client's shard is
        rebuilt from the xorbs it has just sent, never from a stale or forged earlier one.
        """
        path = self._xorb_path(name)
        if length is not None and length > MAX_XORB_BYTES:
            raise HubError(413, f"Xorb larger than {MAX_XORB_BYTES} bytes")
        existed = path.is_file()
        with self.storage.staged("xorb-", path) as staged:
            buf = memoryview(bytearray(1024 * 1024))
            total = 0
            while n := reader.readinto(buf):
                total += n
                if total > MAX_XORB_BYTES:
                    raise HubError(413, f"Xorb larger than {MAX_XORB_BYTES} bytes")
                staged.file.write(buf[:n])
        return not existed

    def put_shard(self, data: bytes) -> list[str]:
        """Rebuild every file the shard names and store it; returns their sha256s.

        Memory and work are bounded by what the shard declares: each term's chunk sizes are
        read from the chunk headers and must add up to the term's declared size before any
        chunk is decoded, and decoded chunks go straight to disk, one at a time. A file whose
        blob is already stored is not rebuilt.
        """
        files = parse_shard(data)
        needed: dict[str, int] = {}
        for terms, _ in files:
            for name, _first, end, _length in terms:
                needed[name] = max(needed.get(name, 0), end)
        with contextlib.ExitStack() as stack:
            xorbs = {name: self._open_xorb(stack, name, count) for name, count in needed.items()}
            return [self._rebuild(terms, expected, xorbs) for terms, expected in files]

    def _open_xorb(self, stack: contextlib.ExitStack, name: str, count: int):
        path = self._xorb_path(name)
        try:
            f = stack.enter_context(open(path, "rb"))
        except FileNotFoundError:
            raise HubError(400, f"Shard names xorb {name}, which was never uploaded") from None
        return f, xorb_index(f, count)

    def _rebuild(self, terms, expected: bytes | None, xorbs: dict) -> str:
        if expected is not None and self.storage.has_blob(hash_hex(expected)):
            return hash_hex(expected)  # blobs are named by their verified sha256
        for name, first, end, length in terms:
            held = sum(size for _, _, _, size in xorbs[name][1][first:end])
            if held != length:
                raise HubError(400, f"Shard: chunks {first}-{end} of xorb {name} hold {held} bytes, not {length}")
        if sum(length for *_, length in terms) > MAX_FILE_SIZE:
            raise HubError(413, f"Shard: a file larger than {MAX_FILE_SIZE} bytes")
        digest = hashlib.sha256()
        with self.storage.staged("xet-file-") as staged:
            for name, first, end, _length in terms:
                f, index = xorbs[name]
                for offset, stored, scheme, size in index[first:end]:
                    f.seek(offset)
                    chunk = decode_chunk(scheme, f.read(stored), size)
                    digest.update(chunk)
                    staged.file.write(chunk)
            sha256 = digest.hexdigest()
            if expected is not None and hash_hex(expected) != sha256:
                raise HubError(400, f"Shard: a file rebuilt from its chunks has sha256 {sha256}, not the {hash_hex(expected)} it claims")
            staged.target = self.storage.blob_path(sha256)
        return sha256
