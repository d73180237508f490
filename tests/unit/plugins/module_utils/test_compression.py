# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import gzip
import io
import shutil
import subprocess
import time
import tracemalloc
import zlib

import pytest
import zstandard
from archive_factory import ImageSpec, chunks, legacy_archive, random_bytes, tar_bytes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
    assert compression.check_level(ZSTD, None) == compression.check_level(ZSTD, compression.ADAPTIVE) == compression.ADAPTIVE
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


def test_only_zstd_adapts():
    with pytest.raises(CompressionError, match=r"^compression_level 'adaptive' is not a level for gzip \(0 to 9\)\.$"):
        compression.check_level(GZIP, compression.ADAPTIVE)


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
    with pytest.raises(ArchiveError) as info:
        decompress(gzip.compress(b"data") + b"this is no gzip member", GZIP)
    assert info.value.msg == "The gzip stream has bytes after its member 1 that are not a gzip member (incorrect header check)."


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


# gzip: one sentence for each way a stream is bad (issue 11, class 9) -------------------------


def gzip_member(data):
    return gzip.compress(data, mtime=0)


def gzip_problem(stream):
    with pytest.raises(ArchiveError) as info:
        decompress(stream, GZIP)
    return info.value.msg


GOOD = gzip_member(b"first member")


@pytest.mark.parametrize("stream, text", [
    (b"\x1f\x8b\x09" + GOOD[3:], "The gzip stream is corrupt in member 1 (unknown compression method)."),
    (b"\x1f\x8b\x08\xe0" + GOOD[4:], "The gzip stream is corrupt in member 1 (unknown header flags set)."),
    (b"\x1f\x8b\x08\x02" + GOOD[4:10] + b"\0\0" + GOOD[10:], "The gzip stream is corrupt in member 1 (header crc mismatch)."),
    (zlib.compress(b"a zlib stream, not gzip"), "The gzip stream is corrupt in member 1 (incorrect header check)."),
    (GOOD[:-8] + bytes([GOOD[-8] ^ 1]) + GOOD[-7:], "The gzip stream is corrupt in member 1 (incorrect data check)."),
    (GOOD[:-1] + bytes([GOOD[-1] ^ 1]), "The gzip stream is corrupt in member 1 (incorrect length check)."),
    (GOOD + GOOD[:-8] + b"\0\0\0\0" + GOOD[-4:], "The gzip stream is corrupt in member 2 (incorrect data check)."),
])
def test_gzip_bad_member(stream, text):
    assert gzip_problem(stream) == text


@pytest.mark.parametrize("cut", [1, 2, 3, 5, 9, 10, 11, len(GOOD) - 1])
def test_gzip_truncated_header_or_body(cut):
    assert gzip_problem(GOOD[:cut]) == "The gzip stream is truncated."
    assert gzip_problem(GOOD + GOOD + GOOD[:cut]) == "The gzip stream is truncated."


@pytest.mark.parametrize("trailer, members", [
    (b"\0" * 512, 1),  # tape padding: gzip warns, Go (and so Docker) refuses
    (b"garbage", 1),
    (b"\x1f", 1),  # half a magic is truncation, see below
    (zlib.compress(b"zlib"), 1),  # zlib's automatic header detection would have accepted this
    (b"PK\x03\x04", 2),
])
def test_gzip_bytes_after_the_last_member(trailer, members):
    stream = GOOD * members + trailer
    if trailer == b"\x1f":
        assert gzip_problem(stream) == "The gzip stream is truncated."
        return
    assert gzip_problem(stream) == \
        "The gzip stream has bytes after its member %d that are not a gzip member (incorrect header check)." % members


def test_gzip_many_empty_members_take_bounded_time():
    stream = gzip_member(b"") * 50_000 + gzip_member(b"end")  # about 1 MiB
    started = time.monotonic()
    assert decompress(stream, GZIP) == b"end"
    assert time.monotonic() - started < 5


# zstd windows through the reader (issue 11, class 9) ------------------------------------------

needs_zstd_cli = pytest.mark.skipif(shutil.which("zstd") is None, reason="the zstd command is not installed")
WINDOW_DATA = b"window test " * 20_000 + random_bytes(7, 100_000)


def zstd_cli(tmp_path, *options, stdin=True):
    """The zstd command's output for WINDOW_DATA; from stdin the content size is unknown, so the
    window is the one asked for (from a file, zstd shrinks it to the file's size)."""
    source = tmp_path / "data"
    source.write_bytes(WINDOW_DATA)
    with source.open("rb") as data:
        command = ["zstd", "-q", "-c", *options] + ([] if stdin else [str(source)])
        return subprocess.run(command, stdin=data if stdin else subprocess.DEVNULL, stdout=subprocess.PIPE, check=True).stdout


def zstd_problem(stream):
    with pytest.raises(ArchiveError) as info:
        decompress(stream, ZSTD)
    return info.value.msg


@needs_zstd_cli
def test_zstd_long_31_from_a_pipe_is_refused_naming_the_window(tmp_path):
    stream = zstd_cli(tmp_path, "--long=31")
    assert zstandard.get_frame_parameters(stream).window_size == 1 << 31
    message = zstd_problem(stream)
    assert message == ("The zstd stream needs a 2 GiB window to be decompressed, more than the 16 MiB this collection "
                       "allows; re-compress it with a smaller window, for example with: zstd -d --long=31 -c OLD.tar.zst "
                       "| zstd -o NEW.tar.zst.")


@needs_zstd_cli
def test_zstd_recompressed_as_the_message_says_is_read(tmp_path):
    big = tmp_path / "old.tar.zst"
    big.write_bytes(zstd_cli(tmp_path, "--long=31"))
    recompressed = subprocess.run("zstd -q -d --long=31 -c %s | zstd -q -c" % big, shell=True, stdout=subprocess.PIPE,
                                  check=True).stdout
    assert decompress(recompressed, ZSTD) == WINDOW_DATA


@needs_zstd_cli
@pytest.mark.parametrize("options, window", [
    (["-19"], 8 * MIB),  # the largest window of the levels without --ultra
    (["--long=24"], 16 * MIB),  # the cap itself
], ids=["19", "long=24"])
def test_zstd_windows_up_to_the_cap_are_read(tmp_path, options, window):
    stream = zstd_cli(tmp_path, *options)
    assert zstandard.get_frame_parameters(stream).window_size == window
    assert decompress(stream, ZSTD) == WINDOW_DATA


@needs_zstd_cli
@pytest.mark.parametrize("options", [["--long=25"], ["--ultra", "-20"]], ids=["long=25", "ultra-20"])
def test_zstd_windows_twice_the_cap_are_refused_naming_the_window(tmp_path, options):
    """What `zstd --ultra -20` writes from a pipe: 32 MiB, twice the cap (issue 11, class 9)."""
    stream = zstd_cli(tmp_path, *options)
    assert zstandard.get_frame_parameters(stream).window_size == 1 << 25
    assert zstd_problem(stream) == ("The zstd stream needs a 32 MiB window to be decompressed, more than the 16 MiB this "
                                    "collection allows; re-compress it with a smaller window, for example with: zstd -d "
                                    "--long=25 -c OLD.tar.zst | zstd -o NEW.tar.zst.")


@needs_zstd_cli
@pytest.mark.parametrize("options, window_log, size_text", [
    (["--long=26"], 26, "64 MiB"), (["--ultra", "-21"], 26, "64 MiB"),  # four times the cap
    (["--long=27"], 27, "128 MiB"), (["--long"], 27, "128 MiB"), (["--ultra", "-22"], 27, "128 MiB"),  # eight times
], ids=["long=26", "ultra-21", "long=27", "long", "ultra-22"])
def test_zstd_windows_above_the_cap_are_refused_naming_the_window(tmp_path, options, window_log, size_text):
    """What `zstd --long` and `zstd --ultra -21/-22` write from a pipe (issue 11, class 9)."""
    stream = zstd_cli(tmp_path, *options)
    assert zstandard.get_frame_parameters(stream).window_size == 1 << window_log
    assert zstd_problem(stream) == ("The zstd stream needs a %s window to be decompressed, more than the 16 MiB this "
                                    "collection allows; re-compress it with a smaller window, for example with: zstd -d "
                                    "--long=%d -c OLD.tar.zst | zstd -o NEW.tar.zst." % (size_text, window_log))


@needs_zstd_cli
def test_zstd_long_31_of_a_small_file_is_read(tmp_path):
    """From a file of known size zstd writes no larger window than the file: nothing to refuse."""
    assert decompress(zstd_cli(tmp_path, "--long=31", stdin=False), ZSTD) == WINDOW_DATA


@needs_zstd_cli
def test_zstd_long_28_is_refused(tmp_path):
    assert zstd_problem(zstd_cli(tmp_path, "--long=28")).startswith("The zstd stream needs a 256 MiB window")


def library_frame(window_log, data=WINDOW_DATA):
    params = zstandard.ZstdCompressionParameters(window_log=window_log, write_checksum=1)
    sink = io.BytesIO()
    writer = zstandard.ZstdCompressor(compression_params=params).stream_writer(sink, closefd=False)
    writer.write(data)
    writer.flush(zstandard.FLUSH_FRAME)
    return sink.getvalue()


def test_zstd_library_windows():
    assert decompress(library_frame(24), ZSTD) == WINDOW_DATA
    assert zstd_problem(library_frame(25)).startswith("The zstd stream needs a 32 MiB window to be decompressed")
    assert zstd_problem(library_frame(26)).startswith("The zstd stream needs a 64 MiB window to be decompressed")
    assert zstd_problem(library_frame(27)).startswith("The zstd stream needs a 128 MiB window to be decompressed")
    assert zstd_problem(library_frame(31)).startswith("The zstd stream needs a 2 GiB window to be decompressed")
    assert zstd_problem(library_frame(28)).startswith("The zstd stream needs a 256 MiB window to be decompressed")


def test_zstd_large_window_is_refused_before_anything_is_decoded():
    """Its body is garbage, yet the message is about the window: nothing was decoded; and a good
    frame before it in the same read gives no output either."""
    big = (0xFD2FB528).to_bytes(4, "little") + b"\x00" + bytes([(31 - 10) << 3]) + b"\xff" * 5000
    assert zstd_problem(big).startswith("The zstd stream needs a 2 GiB window")
    reader = compression.open_reader(io.BytesIO(zstandard.ZstdCompressor().compress(b"first") + big), ZSTD)
    with pytest.raises(ArchiveError, match="2 GiB window"):
        reader.read()


def test_zstd_large_window_in_a_later_frame():
    """Frames are checked as their headers arrive: a first frame longer than one read of the
    decoder is delivered, the next one is refused at its header."""
    data = random_bytes(8, 400_000)
    reader = compression.open_reader(io.BytesIO(zstandard.ZstdCompressor(write_checksum=True).compress(data) + library_frame(30)), ZSTD)
    delivered = b""
    with pytest.raises(ArchiveError, match="needs a 1 GiB window"):
        while True:
            delivered += reader.read(65_536)
    assert delivered and data.startswith(delivered)


def test_zstd_decoder_limit_is_the_cap(monkeypatch):
    """The tracker and the decoder agree: were the tracker silent, the decoder would still refuse."""
    monkeypatch.setattr(compression.ZstdFrameTracker, "_check_window", lambda self, window: None)
    assert decompress(library_frame(24), ZSTD) == WINDOW_DATA
    with pytest.raises(ArchiveError, match="corrupt"):
        decompress(library_frame(25), ZSTD)


@pytest.mark.parametrize("level, window", [(-7, 512 * 1024), (3, 2 * MIB), (19, 8 * MIB), (20, 16 * MIB), (21, 16 * MIB), (22, 16 * MIB)])
def test_our_zstd_windows_stay_within_the_cap(level, window):
    """Levels 20 to 22 ask for 32 to 128 MiB windows: our writer caps them, so what it writes is always read back."""
    stream = compress(WINDOW_DATA, ZSTD, level)
    assert zstandard.get_frame_parameters(stream).window_size == window <= compression.ZSTD_MAX_WINDOW
    assert decompress(stream, ZSTD) == WINDOW_DATA


# properties: any input gives ArchiveError or the right data, in bounded time ------------------


COMPRESSORS = {
    GZIP: lambda data: gzip.compress(data, mtime=0),
    ZSTD: lambda data: zstandard.ZstdCompressor(write_checksum=True).compress(data),
}
MAGICS = {GZIP: b"\x1f\x8b", ZSTD: b"\x28\xb5\x2f\xfd"}
PROPERTY = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
READ_CAP = 64 * MIB  # random bytes can describe a lot of output; the property is about errors, not size


def outcome(stream, kind):
    """The decompressed bytes (up to READ_CAP) or the ArchiveError; any other exception fails."""
    started = time.monotonic()
    reader = compression.open_reader(io.BytesIO(stream), kind)
    blocks, total = [], 0
    try:
        while total < READ_CAP:
            block = reader.read(MIB)
            if not block:
                break
            assert len(block) <= MIB
            blocks.append(block)
            total += len(block)
    except ArchiveError as exc:
        assert exc.msg.endswith(".") and "\n" not in exc.msg
        return exc
    finally:
        assert time.monotonic() - started < 5
    return b"".join(blocks)


PIECES = st.lists(st.one_of(st.binary(max_size=300), st.sampled_from([b"\0" * 5000, b"ab" * 3000])), min_size=1, max_size=3)


@PROPERTY
@given(st.sampled_from([GZIP, ZSTD]), st.binary(max_size=2048), st.booleans())
def test_random_bytes(kind, data, with_magic):
    outcome((MAGICS[kind] if with_magic else b"") + data, kind)


@PROPERTY
@given(st.sampled_from([GZIP, ZSTD]), PIECES, st.data())
def test_random_truncation(kind, pieces, draw):
    members = [COMPRESSORS[kind](piece) for piece in pieces]
    stream = b"".join(members)
    cut = draw.draw(st.integers(min_value=0, max_value=len(stream)))
    ends = {sum(len(member) for member in members[:count]): b"".join(pieces[:count]) for count in range(len(members) + 1)}
    result = outcome(stream[:cut], kind)
    if cut in ends:
        assert result == ends[cut]  # a cut between members is a shorter, complete stream
    else:
        assert isinstance(result, ArchiveError) and "truncated" in result.msg


@PROPERTY
@given(st.sampled_from([GZIP, ZSTD]), PIECES, st.data())
def test_random_damage(kind, pieces, draw):
    """gzip members carry a CRC-32 and our zstd frames a checksum: damage is refused or harmless."""
    stream = bytearray(b"".join(COMPRESSORS[kind](piece) for piece in pieces))
    position = draw.draw(st.integers(min_value=0, max_value=len(stream) - 1))
    stream[position] ^= draw.draw(st.integers(min_value=1, max_value=255))
    result = outcome(bytes(stream), kind)
    assert isinstance(result, ArchiveError) or result == b"".join(pieces)


@PROPERTY
@given(st.integers(min_value=0, max_value=255), st.binary(max_size=64), st.booleans())
def test_random_zstd_frame_headers(descriptor, rest, single_segment):
    """Any frame descriptor and header bytes: a frame, or one sentence (window, corrupt, truncated)."""
    descriptor = descriptor | 0x20 if single_segment else descriptor
    outcome(b"\x28\xb5\x2f\xfd" + bytes([descriptor]) + rest, ZSTD)


# decompression bombs ------------------------------------------------------------------------


def _zeros_stream(size):
    writer = zstandard.ZstdCompressor(level=3).compressobj()
    piece = bytes(1 << 20)
    parts = [writer.compress(piece) for _unused in range(size >> 20)]
    return b"".join(parts) + writer.flush()


def test_a_zstd_bomb_is_refused_once_it_expands_past_the_allowance():
    stream = _zeros_stream(compression.EXPANSION_ALLOWANCE + (64 << 20))
    assert len(stream) * compression.MAX_EXPANSION < 64 << 20  # a few KiB: far past the ratio
    reader = compression.open_reader(io.BytesIO(stream), ZSTD)
    produced = 0
    with pytest.raises(ArchiveError) as info:
        for block in iter(lambda: reader.read(1 << 20), b""):
            produced += len(block)
    assert "decompression bomb" in info.value.msg and "2048 times" in info.value.msg
    assert produced <= compression.EXPANSION_ALLOWANCE + compression.MAX_EXPANSION * len(stream)


def test_zeros_within_the_allowance_are_read():
    stream = _zeros_stream(64 << 20)
    reader = compression.open_reader(io.BytesIO(stream), ZSTD)
    assert sum(len(block) for block in iter(lambda: reader.read(1 << 20), b"")) == 64 << 20


def test_gzip_cannot_reach_the_expansion_cap():
    """gzip tops out near 1,032 times: no genuine gzip archive is ever refused as a bomb."""
    stream = gzip.compress(bytes(64 << 20), compresslevel=9)
    assert (64 << 20) / len(stream) < compression.MAX_EXPANSION
    reader = compression.open_reader(io.BytesIO(stream), GZIP)
    assert sum(len(block) for block in iter(lambda: reader.read(1 << 20), b"")) == 64 << 20


# adaptive zstd level ---------------------------------------------------------------------------

Adaptive = compression.AdaptiveLevel


def test_the_level_falls_at_once_when_writing_holds_the_stream_up():
    control = Adaptive()
    assert control.level == Adaptive.START
    assert [control.next_level(0.9, 2.0) for _unused in range(4)] == [2, 1, 1, 1]  # never below the lowest


def test_the_level_falls_when_the_machine_has_no_idle_cpu_although_the_writer_waits():
    """On a host that runs the engine too, compressing harder slows the engine: the writer then
    waits for input, which must not be read as room for a higher level."""
    control = Adaptive()
    assert [control.next_level(0.05, 0.1) for _unused in range(3)] == [2, 1, 1]


def test_the_level_rises_only_after_stretches_in_a_row_with_room_and_spare_cpu():
    control = Adaptive()
    levels = [control.next_level(0.1, 1.5) for _unused in range(10)]
    assert levels == [3, 4, 4, 5, 5, 6, 6, 6, 6, 6]  # one step per PATIENCE stretches, up to the highest
    control = Adaptive()
    mixed = [control.next_level(0.1, 1.5), control.next_level(0.45, 1.5), control.next_level(0.1, 1.5),
             control.next_level(0.1, 1.5)]
    assert mixed == [3, 3, 3, 4]  # a stretch without room starts the count again


def test_without_cpu_figures_the_writer_share_decides():
    control = Adaptive()
    assert [control.next_level(0.1, None) for _unused in range(2)] == [3, 4]
    assert control.next_level(0.8, None) == 3
    assert control.next_level(0.45, None) == 3  # neither busy nor roomy: holds


def test_the_range_is_kept():
    control = Adaptive(lowest=2, highest=2, start=5)
    assert control.level == 2
    assert control.next_level(0.0, 4.0) == control.next_level(0.0, 4.0) == control.next_level(1.0, 0.0) == 2


def _proc_stat(path, user, idle, iowait, cores=2):
    path.write_text("cpu  %d 0 0 %d %d 0 0 0 0 0\n" % (user, idle, iowait) + "".join("cpu%d 0 0 0 0 0 0 0 0 0 0\n" % i for i in range(cores)))


def test_idle_cores_are_read_from_proc_stat(tmp_path, monkeypatch):
    monkeypatch.setattr(compression.os, "cpu_count", lambda: 2)
    stat = tmp_path / "stat"
    _proc_stat(stat, 100, 100, 0)
    idle = compression.CpuIdle(str(stat))
    _proc_stat(stat, 150, 130, 20)  # of 100 ticks, 30 idle and 20 waiting for I/O: half of 2 cores
    assert idle.sample() == pytest.approx(1.0)
    assert idle.sample() is None  # no tick since: nothing to tell


@pytest.mark.parametrize("content", [None, "", "cpu  x y z\n", "intr 1 2 3\n"])
def test_idle_cores_are_unknown_without_a_readable_proc_stat(tmp_path, content):
    stat = tmp_path / "stat"
    if content is not None:
        stat.write_text(content)
    idle = compression.CpuIdle(str(stat))
    assert idle.sample() is None


class ScriptedLevels:
    """A controller that answers the levels given, in order, and records what it was told."""

    def __init__(self, start, answers):
        self.level = start
        self.answers = list(answers)
        self.told = []

    def next_level(self, busy_share, idle_cores, ratio):
        self.told.append((busy_share, idle_cores, ratio))
        self.level = self.answers.pop(0) if self.answers else self.level
        return self.level


class FixedIdle:
    def __init__(self, cores):
        self.cores = cores

    def sample(self):
        return self.cores


def frame_levels(stream):
    """The number of zstd frames in stream."""
    tracker = compression.ZstdFrameTracker()
    tracker.feed(stream)
    tracker.finish()
    return tracker.frames


STRETCH = 64 << 10


def adaptive_compress(data, controller, monkeypatch, cpu=None, clock=time.monotonic, pieces=16 << 10):
    monkeypatch.setattr(compression._AdaptiveZstdWriter, "STRETCH", STRETCH)
    sink = Sink()
    writer = compression._AdaptiveZstdWriter(sink, -1, controller, cpu or FixedIdle(1.0), clock)
    for piece in chunks(data, pieces):
        writer.write(piece)
    writer.finish()
    return sink.getvalue(), writer


def test_an_adaptive_stream_starts_a_frame_at_each_new_level_and_records_what_each_level_took(monkeypatch):
    data = b"".join(b"row %d of a table that repeats itself a little\n" % (i % 977) for i in range(40_000))
    assert len(data) > 20 * STRETCH
    controller = ScriptedLevels(3, [3, 1, 1, 5, 5, 5])
    stream, writer = adaptive_compress(data, controller, monkeypatch)
    assert decompress(stream, ZSTD) == data
    assert frame_levels(stream) == 3  # level 3, then 1, then 5: one frame each, however many stretches
    assert writer.levels[3] == writer.levels[1] == 2 * STRETCH  # two stretches each
    assert sum(writer.levels.values()) == len(data)
    assert compression.level_facts(writer, len(data)) == {
        "compression_levels": {"1": 2 * STRETCH, "3": 2 * STRETCH, "5": len(data) - 4 * STRETCH}, "compression_adaptive": True}
    assert all(idle == 1.0 for _busy, idle, _ratio in controller.told)
    # Every reader takes a stream of frames: zstd's own, and python-zstandard across frames.
    with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(stream), read_across_frames=True) as reader:
        assert reader.read() == data
    if shutil.which("zstd"):
        assert subprocess.run(["zstd", "-dc"], input=stream, capture_output=True, check=True).stdout == data


class SteppingClock:
    """Time that moves only when the test says, or by `inside_writes` between the two readings
    each write takes (its start, then its end)."""

    def __init__(self, inside_writes=0.0):
        self.now, self.inside_writes, self.readings = 0.0, inside_writes, 0

    def __call__(self):
        self.readings += 1
        if self.readings % 2 == 0:
            self.now += self.inside_writes
        return self.now


def compressible(size):
    """Text that compresses to about a third, unlike random bytes (which go to the lowest level at once)."""
    words = random_bytes(7, size).hex().encode()[:size // 2]
    return (words + words[::-1])[:size]


def test_writes_that_take_all_the_time_lower_the_level(monkeypatch):
    # Each write takes a second and nothing else takes any time: the writer is busy the whole stretch.
    _stream, writer = adaptive_compress(compressible(4 * STRETCH), Adaptive(), monkeypatch, clock=SteppingClock(1.0))
    assert sorted(writer.levels) == [1, 2, 3]


def test_waiting_for_input_with_spare_cpu_raises_the_level(monkeypatch):
    clock = SteppingClock()
    monkeypatch.setattr(compression._AdaptiveZstdWriter, "STRETCH", STRETCH)
    writer = compression._AdaptiveZstdWriter(Sink(), -1, Adaptive(), FixedIdle(1.5), clock)
    for piece in chunks(compressible(6 * STRETCH), 16 << 10):
        clock.now += 1.0  # waiting for the engine between writes; writing itself takes no time
        writer.write(piece)
    writer.finish()
    assert sorted(writer.levels) == [3, 4, 5]


def test_data_that_does_not_compress_goes_to_the_lowest_level_at_once(monkeypatch):
    """Random bytes (a containerd store's gzip layers) compress to nothing less at level 6 than at
    level 1: the level falls to 1 after the first stretch, though there is time and CPU to spare,
    and rises again, as usual, once the data compresses."""
    stretch = 8 << 20  # whole 2 MiB jobs, so that the workers' progress shows within a stretch
    monkeypatch.setattr(compression._AdaptiveZstdWriter, "STRETCH", stretch)
    clock, controller = SteppingClock(), Adaptive()
    sink = Sink()
    writer = compression._AdaptiveZstdWriter(sink, -1, controller, FixedIdle(1.5), clock)
    decisions = []  # (the stretch's ratio, the next level)
    decide = controller.next_level
    monkeypatch.setattr(controller, "next_level", lambda busy, idle, ratio: decisions.append((ratio, decide(busy, idle, ratio))) or decisions[-1][1])
    data = random_bytes(9, 3 * stretch) + compressible(6 * stretch)
    for piece in chunks(data, 1 << 20):
        clock.now += 1.0  # waiting for input with CPU to spare: without the ratio, the level would rise
        writer.write(piece)
    writer.finish()
    ratios, levels = [ratio for ratio, _level in decisions], [level for _ratio, level in decisions]
    assert all(ratio > Adaptive.INCOMPRESSIBLE for ratio in ratios[:3]), ratios
    assert all(ratio < 0.7 for ratio in ratios[4:]), ratios  # the workers' lag: the 4th stretch is a mix
    assert levels == [1, 1, 1, 1, 2, 2, 3, 3, 4]  # then up one level per PATIENCE roomy stretches
    assert writer.levels == {3: 3 * stretch, 1: 4 * stretch, 2: 2 * stretch}
    assert decompress(sink.getvalue(), ZSTD) == data


def test_only_a_stretch_that_did_not_compress_sends_the_level_to_the_lowest():
    control = Adaptive()
    assert [control.next_level(0.1, 1.5, None) for _unused in range(2)] == [3, 4]
    assert control.next_level(0.1, 1.5, 0.96) == 1
    assert control.next_level(0.9, 1.5, 0.3) == 1  # compressible and busy: falls, and never below 1


def test_a_fixed_level_is_one_frame_and_reproducible():
    first, second = compress(PAYLOAD, ZSTD, 5), compress(PAYLOAD, ZSTD, 5)
    assert first == second and frame_levels(first) == 1
    sink = Sink()
    writer = compression.open_writer(sink, ZSTD, 5)
    writer.write(PAYLOAD)
    writer.finish()
    assert compression.level_facts(writer, len(PAYLOAD)) == {"compression_levels": {"5": len(PAYLOAD)}, "compression_adaptive": False}


def test_level_facts_of_each_kind():
    gzip_writer = compression.open_writer(Sink(), GZIP)
    gzip_writer.write(b"abc")
    assert compression.level_facts(gzip_writer, 3) == {"compression_levels": {"6": 3}, "compression_adaptive": False}
    assert compression.level_facts(compression.open_writer(Sink(), NONE), 3) == {}
    assert isinstance(compression.open_writer(Sink(), ZSTD), compression._AdaptiveZstdWriter)


@pytest.mark.parametrize("archive, kept", [
    ({"compression_levels": {"1": 5, "3": 0}, "compression_adaptive": True}, True),
    ({"compression_levels": {"1": 5}}, False),
    ({"compression_levels": {"1": "5"}, "compression_adaptive": True}, False),
    ({"compression_levels": {"1": True}, "compression_adaptive": False}, False),
    ({"compression_levels": [1, 5], "compression_adaptive": False}, False),
    ({"compression_levels": {str(i): 1 for i in range(33)}, "compression_adaptive": True}, False),
    ({}, False),
])
def test_recorded_level_facts_take_only_their_own_shape(archive, kept):
    assert compression.recorded_level_facts(archive) == (archive if kept else {})
