"""Uploads through Xet: clients with hf_xet installed push to the local Hub
without HF_HUB_DISABLE_XET, and the Xet endpoints are as guarded as the rest.

The real clients run in a fresh process whose environment lacks HF_HUB_DISABLE_XET (the test
session sets it, for speed); the decoders are checked against inputs whose output is known.
"""

from __future__ import annotations

import hashlib
import json
import struct

import pytest
from huggingface_hub import HfApi
from raw_http import closed_by_server, connect, read_response, serving
from test_hub_clients import run_fresh

from hub_emo.hub import xet
from hub_emo.hub.rules import HubError

TOKEN = "hf_xet_tests_token_1234567890"
WITHOUT_XET_SWITCH = {"HF_HUB_DISABLE_XET": None, "HF_HUB_DISABLE_PROGRESS_BARS": "1"}


def xet_objects(root, kind: str = "xorbs") -> set:
    """Names of the xorbs stored (``xorbs``) or replaced by a map of their chunks (``maps``)."""
    return {p.name.removesuffix(".json") for p in (root / "xet" / kind).rglob("*") if p.is_file()}


def test_upload_file_and_folder_through_xet_without_the_switch(hub, tmp_path):
    before = xet_objects(hub.root, "maps")
    got = run_fresh(
        f"""
        import json, os, pathlib, hashlib
        from huggingface_hub import HfApi, hf_hub_download, snapshot_download
        from huggingface_hub.utils._runtime import is_xet_available
        api = HfApi()
        api.create_repo("hub-emo/xet-files", exist_ok=True)
        rng_bytes = hashlib.sha256(b"seed").digest() * 20000          # 640 KB, repeats (LZ4 matches)
        data = os.urandom(300_000) + b"\\0" * 500_000 + rng_bytes + bytes(range(256)) * 999
        commit = api.upload_file(path_or_fileobj=data, path_in_repo="w.bin", repo_id="hub-emo/xet-files")
        folder = pathlib.Path({str(tmp_path)!r}) / "folder"
        (folder / "sub").mkdir(parents=True)
        (folder / "a.safetensors").write_bytes(os.urandom(100_000) * 3)
        (folder / "sub" / "b.bin").write_bytes(b"\\1\\2\\3\\4" * 70_000)
        (folder / "notes.txt").write_text("small text goes inline")
        api.upload_folder(folder_path=folder, repo_id="hub-emo/xet-files")
        snap = pathlib.Path(snapshot_download("hub-emo/xet-files"))
        same = [(snap / p).read_bytes() == (folder / p).read_bytes() for p in ("a.safetensors", "sub/b.bin", "notes.txt")]
        info = api.get_paths_info("hub-emo/xet-files", ["w.bin"])[0]
        print(json.dumps({{
            "xet": is_xet_available(),
            "file": pathlib.Path(hf_hub_download("hub-emo/xet-files", "w.bin")).read_bytes() == data,
            "folder": same,
            "lfs_sha256": info.lfs.sha256 == hashlib.sha256(data).hexdigest(),
        }}))
        """,
        env=WITHOUT_XET_SWITCH,
    )
    assert got == {"xet": True, "file": True, "folder": [True, True, True], "lfs_sha256": True}
    mapped = xet_objects(hub.root, "maps") - before
    assert mapped  # it went through Xet, not the LFS batch API
    assert not mapped & xet_objects(hub.root)  # each xorb, all its chunks now in files, is kept once: as blobs


def test_a_push_sharing_chunks_with_an_earlier_one_is_rebuilt_after_its_xorbs_were_collected(hub):
    """The client remembers the xorbs it pushed and names them again instead of resending
    chunks it has sent before; those xorbs are gone by then, and their maps stand in."""
    code = """
        import hashlib, json, os, pathlib, random, sys
        from huggingface_hub import HfApi, hf_hub_download
        api = HfApi()
        api.create_repo("hub-emo/xet-dedup", exist_ok=True)
        base = random.Random(7).randbytes(3_000_000)
        data = base if sys.argv[1] == "first" else base + random.Random(8).randbytes(500_000)
        api.upload_file(path_or_fileobj=data, path_in_repo=sys.argv[1] + ".bin", repo_id="hub-emo/xet-dedup")
        back = pathlib.Path(hf_hub_download("hub-emo/xet-dedup", sys.argv[1] + ".bin")).read_bytes()
        print(json.dumps({"same": back == data}))
        """
    before = xet_objects(hub.root, "maps")
    assert run_fresh(code.replace("sys.argv[1]", '"first"'), env=WITHOUT_XET_SWITCH) == {"same": True}
    first = xet_objects(hub.root, "maps") - before
    assert first and not first & xet_objects(hub.root)
    assert run_fresh(code.replace("sys.argv[1]", '"second"'), env=WITHOUT_XET_SWITCH) == {"same": True}


@pytest.mark.slow  # imports transformers and torch in a fresh process
def test_transformers_push_to_hub_through_xet_without_the_switch(hub):
    got = run_fresh(
        """
        import json, torch
        from transformers import Wav2Vec2Config, Wav2Vec2Model
        torch.manual_seed(0)
        config = Wav2Vec2Config(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                                conv_dim=(32, 32, 32), conv_kernel=(3, 3, 3), conv_stride=(2, 2, 2),
                                num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
        model = Wav2Vec2Model(config)
        model.push_to_hub("hub-emo/xet-tiny-w2v")
        loaded = Wav2Vec2Model.from_pretrained("hub-emo/xet-tiny-w2v", force_download=True)
        same = all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
        print(json.dumps({"same": same}))
        """,
        env=WITHOUT_XET_SWITCH,
    )
    assert got == {"same": True}
    assert "model.safetensors" in HfApi(endpoint=hub.url).list_repo_files("hub-emo/xet-tiny-w2v")


# -- decoders, against outputs known by construction ------------------------------------
def lz4_frame(*blocks: bytes, flags: int = 0x60) -> bytes:
    out = b"\x04\x22\x4d\x18" + bytes([flags, 0x40, 0x00])
    for block in blocks:
        out += struct.pack("<I", len(block)) + block
    return out + b"\0\0\0\0"


def test_lz4_frames_decode_literals_and_overlapping_matches():
    # token 0x26: 2 literals "ab", then a match of 6+4 = 10 bytes at offset 2 (overlapping)
    assert xet.lz4_frame_decompress(lz4_frame(b"\x26ab\x02\x00"), 12) == b"ab" * 6
    # 15+ literals (extension byte), a non-overlapping match, trailing literals in their own sequence
    literals = bytes(range(20))
    block = bytes([0xF0]) + bytes([5]) + literals + b"\x14\x00" + bytes([0x30]) + b"xyz"
    assert xet.lz4_frame_decompress(lz4_frame(block), 20 + 4 + 3) == literals + literals[:4] + b"xyz"
    # a match length past 15 continues in extension bytes, 255 meaning another follows: 4 + 15 + 255 + 3
    assert xet.lz4_frame_decompress(lz4_frame(b"\x1fa\x01\x00" + bytes([255, 3])), 1 + 277) == b"a" * 278
    stored = struct.pack("<I", 5 | 0x80000000) + b"hello"  # a block kept uncompressed
    assert xet.lz4_frame_decompress(b"\x04\x22\x4d\x18\x60\x40\x00" + stored + b"\0\0\0\0", 5) == b"hello"
    for bad, size in (
        (lz4_frame(b"\x26ab\x09\x00"), 12),  # offset reaches before the start
        (lz4_frame(b"\x26ab\x02\x00"), 11),  # decodes to more than declared
        (b"\x00\x22\x4d\x18" + lz4_frame(b"\x10a")[4:], 1),  # no LZ4 magic
        (lz4_frame(b"\x50ab"), 5),  # literals run past the block
    ):
        with pytest.raises(HubError) as error:
            xet.lz4_frame_decompress(bad, size)
        assert error.value.status == 400


def test_byte_grouping_is_undone_and_hashes_are_spelled_as_the_cas_api_says():
    words = bytes(range(10))  # 0..9: groups (0,4,8), (1,5,9), (2,6), (3,7)
    grouped = bytes([0, 4, 8, 1, 5, 9, 2, 6, 3, 7])
    stored = lz4_frame(bytes([len(grouped) << 4]) + grouped)  # one block of literals only
    assert xet.decode_chunk(2, stored, len(words)) == words  # scheme 2: LZ4, then byte grouping undone
    assert xet.decode_chunk(1, stored, len(words)) == grouped  # scheme 1: LZ4 alone
    # the spec's own example string drops the "10" of the third word; this is its byte order spelled out
    assert xet.hash_hex(bytes(range(32))) == "0706050403020100" "0f0e0d0c0b0a0908" "1716151413121110" "1f1e1d1c1b1a1918"


def chunk(data: bytes) -> bytes:
    return bytes([0]) + len(data).to_bytes(3, "little") + bytes([0]) + len(data).to_bytes(3, "little") + data


def xet_hash(hex_name: str) -> bytes:
    return b"".join(int(hex_name[i : i + 16], 16).to_bytes(8, "little") for i in range(0, 64, 16))


def shard(files: list[tuple[list[tuple[str, int, int, int]], bytes]]) -> bytes:
    out = b"HFRepoMetaData\0" + b"\0" * 17 + struct.pack("<QQ", 2, 0)
    for terms, sha256 in files:
        out += b"\0" * 32 + struct.pack("<II8x", 1 << 30, len(terms))
        for name, first, end, size in terms:
            out += xet_hash(name) + struct.pack("<IIII", 0, size, first, end)
        out += xet_hash(sha256.hex()) + b"\0" * 16
    return out + b"\xff" * 32 + b"\0" * 16


# -- the endpoints ----------------------------------------------------------------------
@pytest.fixture
def server(tmp_path):
    with serving(tmp_path / "root", TOKEN, "hub-emo/xet") as handle:
        yield handle


def call(server, method: str, path: str, body: bytes = b"", token: str | None = None, declared: int | None = None):
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    with connect(server) as sock:
        sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: {declared or len(body)}\r\n\r\n".encode() + body)
        status, headers, data = read_response(sock)
        return status, headers, data, closed_by_server(sock) if "Connection: close" in headers else False


def xet_token(server) -> str:
    status, headers, data, _ = call(server, "GET", "/api/models/hub-emo/xet/xet-write-token/main", token=TOKEN)
    assert status == 200
    body = json.loads(data)
    assert f"X-Xet-Access-Token: {body['accessToken']}" in headers and body["casUrl"].endswith("/xet")
    assert TOKEN not in data.decode()
    return body["accessToken"]


def test_xet_token_needs_a_write_token_and_the_cas_needs_a_xet_token(server):
    assert call(server, "GET", "/api/models/hub-emo/xet/xet-write-token/main")[0] == 401
    assert call(server, "GET", "/api/models/hub-emo/nope/xet-write-token/main", token=TOKEN)[0] == 404
    good = xet_token(server)
    expired = "xet_1_" + good.split("_", 2)[2]
    for token in (None, TOKEN, expired, good[:-1] + ("0" if good[-1] != "0" else "1")):
        status, headers, _, closed = call(server, "POST", f"/xet/v1/xorbs/default/{'ab' * 32}", token=token, declared=50 * 1024 * 1024)
        assert status == 401 and closed  # refused before reading the 50 MiB it declared


def test_a_shard_rebuilds_files_from_xorbs_and_refuses_lies(server):
    token = xet_token(server)
    pieces = [b"first chunk ", b"second chunk ", b"third"]
    name = "12" * 32
    status, _, data, _ = call(server, "POST", f"/xet/v1/xorbs/default/{name}", b"".join(chunk(p) for p in pieces) + b"footer", token)
    assert status == 200 and json.loads(data) == {"was_inserted": True}
    content = pieces[1] + pieces[2] + pieces[0]
    sha = hashlib.sha256(content).digest()
    files = [([(name, 1, 3, len(pieces[1] + pieces[2])), (name, 0, 1, len(pieces[0]))], sha)]
    blobs = server.root / "blobs"

    for lie in (
        [([(name, 1, 3, len(pieces[1] + pieces[2]))], sha)],  # a term missing: the sha256 does not match
        [([(name, 0, 4, 1)], sha)],  # more chunks than the xorb has
        [([("34" * 32, 0, 1, 5)], sha)],  # a xorb never uploaded
    ):
        status, _, data, _ = call(server, "POST", "/xet/v1/shards", shard(lie), token)
        assert status == 400, data
        assert not (blobs / sha.hex()[:2] / sha.hex()).exists()
    assert call(server, "POST", "/xet/v1/shards", b"\0" * 100, token)[0] == 400

    status, _, data, _ = call(server, "POST", "/xet/v1/shards", shard(files), token)
    assert status == 200, data
    assert (blobs / sha.hex()[:2] / sha.hex()).read_bytes() == content
    assert not [p for p in (server.root / "tmp").iterdir()]


def test_a_shard_whose_terms_jump_between_xorbs_decodes_only_the_chunks_it_names(server):
    """Chunks are read one by one from each xorb's headers (nothing else is decoded), so terms
    cycling through many xorbs cost what they declare, not a decode of every xorb each time."""
    token = xet_token(server)
    names = [f"{i:02x}" * 32 for i in range(6)]
    for name in names:
        assert call(server, "POST", f"/xet/v1/xorbs/default/{name}", chunk(name.encode()) + chunk(b"unused" * 999), token)[0] == 200
    content = b"".join(name.encode() for name in names) * 3
    terms = [(name, 0, 1, 64) for name in names] * 3
    status, _, data, _ = call(server, "POST", "/xet/v1/shards", shard([(terms, hashlib.sha256(content).digest())]), token)
    assert status == 200, data
    sha = hashlib.sha256(content).hexdigest()
    assert (server.root / "blobs" / sha[:2] / sha).read_bytes() == content
