# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import gzip
import io
import tracemalloc
import zlib

import pytest
import zstandard
from archive_factory import ImageSpec, chunks, legacy_archive, random_bytes, tar_bytes

from ansible_collections.airgap.docker.plugins.module_utils import compression
from ansible_collections.airgap.docker.plugins.module_utils.compression import (
    GZIP,
    KINDS,
    NONE,
    ZSTD,
)
from ansible_collections.airgap.docker.plugins.module_utils.errors import (
    ArchiveError,
    CompressionError,
)

MIB = 1 << 20
# Half incompressible, half very compressible, not a multiple of any block size.
PAYLOAD = random_bytes(1, 300_001) + b"docker layer " * 50_000 + b"\0" * 123_457


class Sink(io.BytesIO):
    """A BytesIO that remembers whether anyone closed it."""

    close_calls = 0

    def close(self):
        self.close_calls += 1
        super().close()


def compress(data, kind, level=None, pieces=65_537, threads=-1):
    sink = Sink()
    writer = compression.open_writer(sink, kind, level, threads=threads)
    for piece in chunks(data, pieces):
        writer.write(piece)
    writer.finish()
    assert not sink.closed and sink.close_calls == 0  # the sink stays the caller's
    return sink.getvalue()


def read_all(reader, size=MIB):
    blocks = []
    while True:
        block = reader.read(size)
        if not block:
            return blocks
        blocks.append(block)


def decompress(data, kind, size=MIB):
    return b"".join(read_all(compression.open_reader(io.BytesIO(data), kind), size))


# detection ----------------------------------------------------------------------------------


def test_detect_by_magic():
    tar = tar_bytes([("a", b"1")])
    assert compression.detect(tar[:512]) == NONE
    assert compression.detect(gzip.compress(tar)[:512]) == GZIP
    assert compression.detect(zstandard.ZstdCompressor().compress(tar)[:512]) == ZSTD
    assert compression.detect(b"\x1f\x8b") == GZIP
    assert compression.detect(b"\x28\xb5\x2f\xfd") == ZSTD


@pytest.mark.parametrize("head", [
    b"",
    b"\x1f",
    b"\x28\xb5\x2f",
    b"PK\x03\x04" + b"\0" * 600,  # zip
    b"BZh91AY&SY" + b"\0" * 600,  # bzip2
    b"\xfd7zXZ\0" + b"\0" * 600,  # xz
    b"\0" * 257 + b"usta",  # cut inside the ustar magic
    b"\0" * 257 + b"USTAR" + b"\0" * 250,
    b"hello world" * 100,
])
def test_detect_unknown(head):
    assert compression.detect(head) is None


def test_detect_gnu_tar():
    import tarfile
    assert compression.detect(tar_bytes([("a", b"1")], fmt=tarfile.GNU_FORMAT)[:512]) == NONE


# suffixes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path, kind", [
    ("/srv/images.tar", NONE),
    ("/srv/images.TAR", NONE),
    ("images.tar.gz", GZIP),
    ("images.TAR.GZ", GZIP),
    ("images.tgz", GZIP),
    ("images.tar.zst", ZSTD),
    ("images.tar.zstd", ZSTD),
    ("images.tzst", ZSTD),
    ("/a.tar.gz/b.tar", NONE),
    ("/a.tar/b.tar.zst", ZSTD),
])
def test_from_suffix(path, kind):
    assert compression.from_suffix(path) == kind


@pytest.mark.parametrize("path", ["images.zip", "images.gz", "images.zst", "images", "images.tar.bz2", "images.tar.xz", ""])
def test_from_suffix_unknown(path):
    with pytest.raises(CompressionError) as info:
        compression.from_suffix(path)
    assert repr(path) in info.value.msg
    assert ".tar.gz" in info.value.msg and ".tar.zst" in info.value.msg


def test_resolve():
    assert compression.resolve("auto", "x.tar.gz") == GZIP
    assert compression.resolve(None, "x.tzst") == ZSTD
    assert compression.resolve("auto", "x.tar") == NONE
    # an explicit choice wins over the name, which then needs no known suffix
    assert compression.resolve(GZIP, "x.tar") == GZIP
    assert compression.resolve(ZSTD, "images.bin") == ZSTD
    assert compression.resolve(NONE, "x.tar.gz") == NONE
    with pytest.raises(CompressionError):
        compression.resolve("auto", "images.bin")


# levels -------------------------------------------------------------------------------------


def test_check_level_defaults():
    assert compression.check_level(GZIP, None) == 6
    assert compression.check_level(ZSTD, None) == 3
    assert compression.check_level(NONE, None) is None
    assert compression.check_level(NONE, 99) is None  # ignored for no compression


@pytest.mark.parametrize("kind, level", [(GZIP, 0), (GZIP, 1), (GZIP, 9), (ZSTD, -7), (ZSTD, 1), (ZSTD, 19), (ZSTD, 22)])
def test_check_level_in_range(kind, level):
    assert compression.check_level(kind, level) == level


@pytest.mark.parametrize("kind, level, text", [
    (GZIP, -1, "0 to 9"), (GZIP, 10, "0 to 9"), (ZSTD, -8, "-7 to 22"), (ZSTD, 23, "-7 to 22"),
])
def test_check_level_out_of_range(kind, level, text):
    with pytest.raises(CompressionError) as info:
        compression.check_level(kind, level)
    assert text in info.value.msg
    assert str(level) in info.value.msg and kind in info.value.msg


def test_open_writer_validates_level():
    with pytest.raises(CompressionError):
        compression.open_writer(io.BytesIO(), GZIP, 10)
    with pytest.raises(CompressionError):
        compression.open_writer(io.BytesIO(), ZSTD, 23)


def test_gzip_level_is_applied():
    text = b"the same words again and again, " * 20_000 + random_bytes(2, 10_000)
    stored = compress(text, GZIP, 0)
    best = compress(text, GZIP, 9)
    assert len(stored) > len(text)  # level 0 stores
    assert len(best) < len(text) // 10
    assert decompress(stored, GZIP) == decompress(best, GZIP) == text


def test_zstd_level_is_applied():
    text = b"".join(b"line %d of a log file with some repetition\n" % (i % 5000) for i in range(60_000))
    fast = compress(text, ZSTD, -7)
    strong = compress(text, ZSTD, 19)
    assert len(strong) < len(fast)
    assert decompress(fast, ZSTD) == decompress(strong, ZSTD) == text


# require ------------------------------------------------------------------------------------


def test_require_known_kinds():
    for kind in KINDS:
        compression.require(kind)


@pytest.mark.parametrize("kind", ["bzip2", "xz", "auto", "", None])
def test_require_unknown_kind(kind):
    with pytest.raises(CompressionError) as info:
        compression.require(kind)
    assert "none, gzip, zstd" in info.value.msg


def test_require_zstd_without_zstandard(monkeypatch):
    monkeypatch.setattr(compression, "zstandard", None)
    with pytest.raises(CompressionError, match="zstandard"):
        compression.require(ZSTD)
    with pytest.raises(CompressionError):
        compression.open_reader(io.BytesIO(), ZSTD)
    with pytest.raises(CompressionError):
        compression.open_writer(io.BytesIO(), ZSTD)
    # the other kinds do not need it
    compression.require(GZIP)
    assert decompress(compress(b"abc", GZIP), GZIP) == b"abc"


# round trips --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("read_size", [1000, 65_536, MIB, -1])
def test_round_trip(kind, read_size):
    packed = compress(PAYLOAD, kind)
    if kind == NONE:
        assert packed == PAYLOAD
    else:
        assert len(packed) < len(PAYLOAD)
    reader = compression.open_reader(io.BytesIO(packed), kind)
    blocks = read_all(reader, read_size)
    assert b"".join(blocks) == PAYLOAD
    if kind != NONE:  # the plain reader is the source itself
        limit = MIB if read_size == -1 else read_size
        assert max(len(b) for b in blocks) <= limit


@pytest.mark.parametrize("kind", KINDS)
def test_round_trip_of_an_image_archive_is_detected(kind):
    archive = legacy_archive([ImageSpec(tags=["app:1"])])
    packed = compress(archive, kind)
    assert compression.detect(packed[:512]) == kind
    assert decompress(packed, kind) == archive


@pytest.mark.parametrize("kind", [GZIP, ZSTD])
def test_round_trip_of_nothing(kind):
    packed = compress(b"", kind)
    assert packed  # a valid, empty stream
    assert decompress(packed, kind) == b""


@pytest.mark.parametrize("threads", [0, 1, -1])
def test_zstd_threads(threads):
    assert decompress(compress(PAYLOAD, ZSTD, threads=threads), ZSTD) == PAYLOAD


def test_writers_interoperate_with_standard_tools():
    assert gzip.decompress(compress(PAYLOAD, GZIP)) == PAYLOAD
    packed = compress(PAYLOAD, ZSTD)
    with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(packed)) as reader:
        assert reader.read() == PAYLOAD


def test_readers_accept_standard_tools_output():
    assert decompress(gzip.compress(PAYLOAD, mtime=0), GZIP) == PAYLOAD
    assert decompress(zlib.compress(PAYLOAD, wbits=31), GZIP) == PAYLOAD
    assert decompress(zstandard.ZstdCompressor(level=1).compress(PAYLOAD), ZSTD) == PAYLOAD


def test_plain_reader_and_writer_are_pass_through():
    source = io.BytesIO(b"plain")
    assert compression.open_reader(source, NONE) is source
    sink = io.BytesIO()
    writer = compression.open_writer(sink, NONE)
    writer.write(b"pl")
    writer.write(b"ain")
    writer.finish()
    assert sink.getvalue() == b"plain"


def test_multi_member_gzip():
    parts = [b"first member " * 1000, b"", random_bytes(3, 5000), b"third" * 70_000]
    stream = b"".join(gzip.compress(p, mtime=0) for p in parts)
    for size in (1, 777, MIB):
        reader = compression.open_reader(io.BytesIO(stream), GZIP)
        if size == 1:
            out = b"".join(read_all(reader, 4096))
        else:
            out = b"".join(read_all(reader, size))
        assert out == b"".join(parts)


def test_multi_member_gzip_fed_byte_by_byte():
    class Trickle(io.BytesIO):
        def read(self, size=-1):
            return super().read(1)

    parts = [b"a" * 3000, b"b" * 5, b"c" * 70_000]
    stream = b"".join(gzip.compress(p, mtime=0) for p in parts)
    assert b"".join(read_all(compression.open_reader(Trickle(stream), GZIP))) == b"".join(parts)


def test_multi_frame_zstd():
    parts = [b"frame one " * 1000, random_bytes(4, 4000), b"frame three" * 50_000]
    stream = b"".join(zstandard.ZstdCompressor().compress(p) for p in parts)
    assert decompress(stream, ZSTD) == b"".join(parts)
    assert decompress(stream, ZSTD, size=999) == b"".join(parts)


def test_gzip_and_zstd_writers_append_as_members():
    sink = io.BytesIO()
    for part in (b"one", b"two"):
        writer = compression.open_writer(sink, GZIP)
        writer.write(part)
        writer.finish()
    assert decompress(sink.getvalue(), GZIP) == b"onetwo"
    sink = io.BytesIO()
    for part in (b"one", b"two"):
        writer = compression.open_writer(sink, ZSTD)
        writer.write(part)
        writer.finish()
    assert decompress(sink.getvalue(), ZSTD) == b"onetwo"


# truncation and corruption ------------------------------------------------------------------


GZ = compress(PAYLOAD, GZIP)
ZST = compress(PAYLOAD, ZSTD)


@pytest.mark.parametrize("cut", [1, 2, 5, 10, 100, "half", -9, -8, -4, -1])
def test_truncated_gzip(cut):
    end = len(GZ) // 2 if cut == "half" else cut
    with pytest.raises(ArchiveError, match="truncated"):
        decompress(GZ[:end], GZIP)


def test_truncated_second_gzip_member():
    stream = gzip.compress(b"a" * 1000) + gzip.compress(b"b" * 100_000)
    with pytest.raises(ArchiveError, match="truncated"):
        decompress(stream[:-20], GZIP)


@pytest.mark.parametrize("offset", [20, "half", -6])
def test_corrupt_gzip(offset):
    position = len(GZ) // 2 if offset == "half" else offset
    damaged = bytearray(GZ)
    damaged[position] ^= 0xFF
    with pytest.raises(ArchiveError):
        decompress(bytes(damaged), GZIP)


def test_gzip_garbage_after_members_is_an_error():
    with pytest.raises(ArchiveError, match="corrupt"):
        decompress(gzip.compress(b"data") + b"this is no gzip member", GZIP)


@pytest.mark.parametrize("cut", [4, "half", -1])
def test_truncated_zstd(cut):
    end = len(ZST) // 2 if cut == "half" else cut
    with pytest.raises(ArchiveError):
        decompress(ZST[:end], ZSTD)


def test_truncated_zstd_from_standard_tool():
    packed = zstandard.ZstdCompressor(write_checksum=True).compress(PAYLOAD)
    with pytest.raises(ArchiveError):
        decompress(packed[:-1], ZSTD)


def test_corrupt_zstd_header():
    with pytest.raises(ArchiveError, match="zstd"):
        decompress(b"\x28\xb5\x2f\xfd this is not a zstd frame header at all", ZSTD)


def test_corrupt_zstd_with_checksum_is_detected():
    packed = bytearray(zstandard.ZstdCompressor(write_checksum=True).compress(PAYLOAD))
    packed[len(packed) // 3] ^= 0x55
    with pytest.raises(ArchiveError):
        decompress(bytes(packed), ZSTD)


def test_zstd_writer_records_a_content_checksum():
    """gzip members carry a CRC-32 of their content; zstd frames should carry theirs, or a
    damaged archive decompresses silently into wrong bytes."""
    assert zstandard.get_frame_parameters(ZST).has_checksum


def test_corrupt_zstd_written_by_the_writer_is_detected():
    damaged = bytearray(ZST)
    damaged[len(damaged) // 3] ^= 0x55
    with pytest.raises(ArchiveError):
        decompress(bytes(damaged), ZSTD)


@pytest.mark.parametrize("kind", [GZIP, ZSTD])
def test_empty_source_reads_as_empty(kind):
    assert compression.open_reader(io.BytesIO(b""), kind).read() == b""


# bounded memory -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def zeros_64m():
    size = 64 * MIB
    return size, {GZIP: compress(b"\0" * size, GZIP, 9, pieces=8 * MIB), ZSTD: compress(b"\0" * size, ZSTD, 3, pieces=8 * MIB)}


@pytest.mark.parametrize("kind", [GZIP, ZSTD])
@pytest.mark.parametrize("size", [MIB, 4 * MIB, -1, None])
def test_reader_blocks_are_bounded(zeros_64m, kind, size):
    total, streams = zeros_64m
    assert len(streams[kind]) < MIB  # ratio above 64
    reader = compression.open_reader(io.BytesIO(streams[kind]), kind)
    count, largest, blocks = 0, 0, 0
    while True:
        block = reader.read() if size is None else reader.read(size)
        if not block:
            break
        largest = max(largest, len(block))
        count += len(block)
        blocks += 1
    assert count == total
    assert largest <= MIB
    assert blocks >= 64


def test_gzip_reader_memory_is_flat(zeros_64m):
    total, streams = zeros_64m
    reader = compression.open_reader(io.BytesIO(streams[GZIP]), GZIP)
    tracemalloc.start()
    try:
        count = 0
        while True:
            block = reader.read(MIB)
            if not block:
                break
            count += len(block)
            del block
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == total
    assert peak < 8 * MIB  # a handful of 1 MiB blocks, not 64 MiB


def test_source_is_read_in_bounded_pieces(zeros_64m):
    streams = zeros_64m[1]

    class Recording(io.BytesIO):
        def __init__(self, data):
            super().__init__(data)
            self.sizes = []

        def read(self, size=-1):
            self.sizes.append(size)
            return super().read(size)

    source = Recording(streams[GZIP])
    read_all(compression.open_reader(source, GZIP))
    assert source.sizes and all(0 < s <= MIB for s in source.sizes)
