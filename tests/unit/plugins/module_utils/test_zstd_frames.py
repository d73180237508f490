# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""ZstdFrameTracker: telling a complete zstd stream from a truncated one, frame by frame.

Streams come from python-zstandard, or are built by hand (RFC 8878) where a header layout or
block type must be forced: skippable frames, dictionary IDs, every Frame_Content_Size width.
"""

from __future__ import annotations

import io

import pytest
import zstandard
from archive_factory import chunks, random_bytes

from ansible_collections.airgap.docker.plugins.module_utils import compression
from ansible_collections.airgap.docker.plugins.module_utils.compression import ZSTD, ZstdFrameTracker
from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError

FRAME_MAGIC = 0xFD2FB528
SKIPPABLE_MAGICS = [0x184D2A50 + nibble for nibble in range(16)]
RAW, RLE, COMPRESSED, RESERVED = 0, 1, 2, 3


def track(stream, piece=None):
    """Feed stream to a new tracker in pieces of `piece` bytes (all at once by default); finish."""
    tracker = ZstdFrameTracker()
    for part in chunks(stream, piece or max(len(stream), 1)):
        tracker.feed(part)
    tracker.finish()
    return tracker


def zstd(data, **options):
    return zstandard.ZstdCompressor(**options).compress(data)


def decompress(stream):
    """What python-zstandard makes of a (multi-frame) stream."""
    with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(stream), read_across_frames=True) as reader:
        return reader.read()


def skippable(payload, magic=SKIPPABLE_MAGICS[0]):
    return magic.to_bytes(4, "little") + len(payload).to_bytes(4, "little") + payload


def block(kind, size, last, body):
    return ((size << 3) | (kind << 1) | int(last)).to_bytes(3, "little") + body


def raw_block(data, last=False):
    return block(RAW, len(data), last, data)


def rle_block(byte, count, last=False):
    return block(RLE, count, last, bytes([byte]))


def content_checksum(content):
    """The frame checksum of content (low 32 bits of its XXH64), as zstd writes it."""
    return zstd(content, write_checksum=True)[-4:]


def frame(blocks, content, fcs_size=0, single_segment=False, did_size=0, checksum=False):
    """A frame by hand: header with the asked field widths, then the given (encoded) blocks.

    fcs_size: 0 (absent), 1 (single segment only), 2, 4 or 8 bytes; did_size: 0, 1, 2 or 4.
    """
    assert fcs_size != 1 or single_segment
    assert fcs_size or not single_segment
    fcs_flag = {0: 0, 1: 0, 2: 1, 4: 2, 8: 3}[fcs_size]
    did_flag = {0: 0, 1: 1, 2: 2, 4: 3}[did_size]
    descriptor = (fcs_flag << 6) | (int(single_segment) << 5) | (int(checksum) << 2) | did_flag
    header = FRAME_MAGIC.to_bytes(4, "little") + bytes([descriptor])
    if not single_segment:
        header += bytes([0x50])  # window descriptor: 1 MiB
    if did_size:
        header += (0x0102037F % (1 << (8 * did_size))).to_bytes(did_size, "little")
    if fcs_size:
        header += (len(content) - (256 if fcs_size == 2 else 0)).to_bytes(fcs_size, "little")
    return header + b"".join(blocks) + (content_checksum(content) if checksum else b"")


def descriptor_of(stream):
    return stream[4]


def block_types(stream):
    """The block types of the first frame of stream (a reference walk, for checking fixtures)."""
    descriptor = stream[4]
    single = (descriptor >> 5) & 1
    pos = 5 + (0 if single else 1) + (0, 1, 2, 4)[descriptor & 3] + (single, 2, 4, 8)[descriptor >> 6]
    types = []
    while True:
        header = int.from_bytes(stream[pos:pos + 3], "little")
        pos += 3
        types.append((header >> 1) & 3)
        pos += 1 if (header >> 1) & 3 == RLE else header >> 3
        if header & 1:
            return types


REPETITIVE = b"a" * 300_000  # blocks of a single byte: zstd writes RLE blocks
RANDOM = random_bytes(31, 200_000)  # incompressible: raw blocks
TEXT = b"zstd frame text, somewhat repetitive. " * 400
SMALL = b"small"


# fixtures are what they claim -----------------------------------------------------------------


def test_fixtures_cover_the_frame_features():
    assert RLE in block_types(zstd(REPETITIVE))
    assert block_types(zstd(RANDOM)) == [RAW, RAW]
    assert block_types(zstd(TEXT)) == [COMPRESSED]
    assert descriptor_of(zstd(SMALL)) & 0x20  # single segment, 1-byte content size
    assert descriptor_of(zstd(SMALL)) >> 6 == 0
    assert descriptor_of(zstd(TEXT)) >> 6 == 1  # 2-byte content size
    assert descriptor_of(zstd(REPETITIVE)) >> 6 == 2  # 4-byte content size
    assert not descriptor_of(zstd(TEXT, write_content_size=False)) & 0x20  # window descriptor instead
    assert descriptor_of(zstd(TEXT, write_checksum=True)) & 0x04
    assert not descriptor_of(zstd(TEXT)) & 0x04


# complete streams -----------------------------------------------------------------------------


def test_empty_stream_is_fine():
    tracker = ZstdFrameTracker()
    tracker.finish()
    assert tracker.frames == 0
    assert track(b"").frames == 0


OPTIONS = {
    "default": {},
    "checksum": {"write_checksum": True},
    "no content size": {"write_content_size": False},
    "no content size, checksum": {"write_content_size": False, "write_checksum": True},
    "level 19": {"level": 19},
}
DATA = {"repetitive": REPETITIVE, "random": RANDOM, "text": TEXT, "small": SMALL, "empty": b""}


@pytest.mark.parametrize("options", list(OPTIONS.values()), ids=list(OPTIONS))
@pytest.mark.parametrize("data", list(DATA.values()), ids=list(DATA))
@pytest.mark.parametrize("piece", [None, 4096, 7])
def test_single_frame(options, data, piece):
    assert track(zstd(data, **options), piece).frames == 1


def test_single_frame_fed_byte_by_byte():
    for stream in (zstd(SMALL), zstd(TEXT, write_checksum=True), zstd(b"")):
        assert track(stream, 1).frames == 1


def test_streaming_writer_frames():
    """Frames written by a streaming compressor (no content size, several blocks)."""
    sink = io.BytesIO()
    writer = zstandard.ZstdCompressor(write_checksum=True).stream_writer(sink, closefd=False)
    for part in chunks(TEXT + RANDOM + REPETITIVE, 50_000):
        writer.write(part)
        writer.flush(zstandard.FLUSH_BLOCK)
    writer.flush(zstandard.FLUSH_FRAME)
    stream = sink.getvalue()
    assert len(block_types(stream)) > 3
    assert track(stream).frames == 1
    assert track(stream, 1000).frames == 1


def test_the_project_writer_output_is_complete():
    sink = io.BytesIO()
    writer = compression.open_writer(sink, ZSTD, 3)
    for part in chunks(TEXT + RANDOM + REPETITIVE, 65_536):
        writer.write(part)
    writer.finish()
    assert track(sink.getvalue(), 65_536).frames >= 1


def test_multi_frame_stream():
    parts = [TEXT, b"", RANDOM, SMALL, REPETITIVE]
    stream = b"".join(zstd(part, write_checksum=index % 2 == 0) for index, part in enumerate(parts))
    assert decompress(stream) == b"".join(parts)
    for piece in (None, 1000, 3):
        assert track(stream, piece).frames == len(parts)


def test_dictionary_frame():
    samples = [b'{"id": %d, "name": "item %d", "tags": ["a", "b"], "ok": true}' % (i, i * 7) for i in range(500)]
    dictionary = zstandard.train_dictionary(1024, samples)
    stream = zstandard.ZstdCompressor(dict_data=dictionary, write_dict_id=True, write_checksum=True).compress(samples[42])
    assert descriptor_of(stream) & 3 == 3  # a 4-byte dictionary ID in the header
    assert track(stream).frames == 1
    assert track(stream, 1).frames == 1


# hand-built frames ----------------------------------------------------------------------------


HAND_BUILT = {
    "raw, 1-byte size": (frame([raw_block(b"hello", last=True)], b"hello", fcs_size=1, single_segment=True), b"hello"),
    "rle, 2-byte size": (frame([rle_block(0x61, 300, last=True)], b"a" * 300, fcs_size=2, single_segment=True), b"a" * 300),
    "rle + raw, 4-byte size": (frame([rle_block(0x62, 2000), raw_block(b"tail", last=True)], b"b" * 2000 + b"tail",
                                     fcs_size=4), b"b" * 2000 + b"tail"),
    "8-byte size, checksum": (frame([raw_block(b"x" * 10), rle_block(0x79, 5, last=True)], b"x" * 10 + b"y" * 5,
                                    fcs_size=8, checksum=True), b"x" * 10 + b"y" * 5),
    "no size, empty blocks": (frame([raw_block(b""), raw_block(b"abc"), raw_block(b""), raw_block(b"", last=True)], b"abc"), b"abc"),
    "empty frame": (frame([raw_block(b"", last=True)], b""), b""),
    "empty, single segment": (frame([raw_block(b"", last=True)], b"", fcs_size=1, single_segment=True, checksum=True), b""),
}


@pytest.mark.parametrize("stream, content", list(HAND_BUILT.values()), ids=list(HAND_BUILT))
def test_hand_built_frame(stream, content):
    assert decompress(stream) == content  # the frame is valid
    assert track(stream).frames == 1
    assert track(stream, 1).frames == 1


@pytest.mark.parametrize("did_size", [1, 2, 4])
@pytest.mark.parametrize("fcs_size, single_segment", [(0, False), (1, True), (2, False), (4, True), (8, False)])
@pytest.mark.parametrize("checksum", [False, True])
def test_every_header_layout(did_size, fcs_size, single_segment, checksum):
    content = b"z" * (300 if fcs_size == 2 else 200)  # a 1-byte size holds at most 255, a 2-byte one at least 256
    stream = frame([raw_block(content[:100]), rle_block(0x7A, len(content) - 100, last=True)], content,
                   fcs_size, single_segment, did_size, checksum)
    assert track(stream).frames == 1
    assert track(stream, 1).frames == 1
    with pytest.raises(ArchiveError, match="truncated"):
        track(stream[:-1])


# skippable frames -----------------------------------------------------------------------------


@pytest.mark.parametrize("magic", SKIPPABLE_MAGICS, ids=hex)
def test_skippable_frames_around_and_between_frames(magic):
    payload = b"metadata " + FRAME_MAGIC.to_bytes(4, "little") + b"not a frame" * 30
    stream = (skippable(payload, magic) + zstd(TEXT) + skippable(b"", magic) + zstd(SMALL, write_checksum=True)
              + skippable(payload, magic))
    assert decompress(stream) == TEXT + SMALL
    for piece in (None, 5, 1):
        assert track(stream, piece).frames == 2  # skippable frames are not counted


def test_skippable_frames_through_the_reader():
    stream = skippable(b"seekable index") + zstd(TEXT, write_checksum=True) + skippable(b"\0" * 1000)
    reader = compression.open_reader(io.BytesIO(stream), ZSTD)
    assert b"".join(iter(lambda: reader.read(1000), b"")) == TEXT


@pytest.mark.parametrize("stream", [skippable(b"only metadata"), skippable(b""), skippable(b"a") + skippable(b"b" * 600)],
                         ids=["one", "empty", "two"])
def test_stream_of_only_skippable_frames_is_complete(stream):
    """A stream made only of skippable frames is a complete (empty) zstd stream; zstd and
    python-zstandard decompress it to nothing. It is not truncated."""
    assert decompress(stream) == b""
    assert track(stream).frames == 0


def test_truncated_skippable_frame():
    stream = zstd(SMALL) + skippable(b"payload of eleven")
    for cut in range(len(zstd(SMALL)) + 1, len(stream)):
        with pytest.raises(ArchiveError, match="truncated"):
            track(stream[:cut])


# truncation -----------------------------------------------------------------------------------


TRUNCATION = {
    "small": zstd(SMALL),
    "small, checksum": zstd(SMALL, write_checksum=True),
    "empty content": zstd(b""),
    "text, no content size": zstd(TEXT[:600], write_content_size=False),
    "text, checksum": zstd(TEXT[:2000], write_checksum=True),
    "rle + raw by hand": HAND_BUILT["rle + raw, 4-byte size"][0],
    "empty blocks by hand": HAND_BUILT["no size, empty blocks"][0],
    "dictionary id by hand": frame([raw_block(b"abc", last=True)], b"abc", did_size=4, checksum=True),
}


@pytest.mark.parametrize("stream", list(TRUNCATION.values()), ids=list(TRUNCATION))
def test_truncation_at_every_offset(stream):
    assert track(stream).frames == 1
    for cut in range(1, len(stream)):
        with pytest.raises(ArchiveError, match="truncated"):
            track(stream[:cut])
        with pytest.raises(ArchiveError, match="truncated"):
            track(stream[:cut], 1)


def test_truncation_at_every_offset_of_a_multi_frame_stream():
    frames = [zstd(SMALL, write_checksum=True), skippable(b"meta"), zstd(b"second frame " * 20), zstd(b"")]
    stream = b"".join(frames)
    boundaries = {sum(len(part) for part in frames[:count]) for count in range(len(frames) + 1)}
    assert track(stream).frames == 3
    for cut in range(1, len(stream)):
        if cut in boundaries:
            assert track(stream[:cut]).frames >= 1
            continue
        with pytest.raises(ArchiveError, match="truncated"):
            track(stream[:cut])


def test_truncated_large_stream():
    stream = zstd(TEXT + RANDOM + REPETITIVE, write_checksum=True)
    for cut in (4, 5, 6, len(stream) // 3, len(stream) // 2, len(stream) - 4, len(stream) - 1):
        with pytest.raises(ArchiveError, match="truncated"):
            track(stream[:cut], 65_536)


# corruption -----------------------------------------------------------------------------------


@pytest.mark.parametrize("garbage", [
    b"\0\0\0\0",
    b"PK\x03\x04 zip",
    b"\x1f\x8b\x08\x00 gzip",
    b"ustar" + b"\0" * 100,
    (0x184D2A4F).to_bytes(4, "little") + b"\0" * 8,  # just below the skippable range
    (0x184D2A60).to_bytes(4, "little") + b"\0" * 8,  # just above it
    (FRAME_MAGIC + 1).to_bytes(4, "little"),
])
def test_garbage_magic(garbage):
    tracker = ZstdFrameTracker()
    with pytest.raises(ArchiveError, match="bad frame magic"):
        tracker.feed(garbage)


def test_garbage_after_a_complete_frame():
    with pytest.raises(ArchiveError, match="bad frame magic"):
        track(zstd(TEXT) + b"trailing junk")


def test_garbage_after_a_skippable_frame():
    with pytest.raises(ArchiveError, match="bad frame magic"):
        track(skippable(b"x") + b"junk")


def test_reserved_block_type():
    stream = frame([block(RESERVED, 4, True, b"abcd")], b"abcd")
    with pytest.raises(ArchiveError, match="reserved block type"):
        track(stream)


def test_errors_are_archive_errors_with_a_sentence():
    with pytest.raises(ArchiveError) as info:
        track(zstd(SMALL)[:-1])
    assert info.value.msg == "The zstd stream is truncated."
    with pytest.raises(ArchiveError) as info:
        track(b"junk")
    assert info.value.msg == "The zstd stream is corrupt (bad frame magic)."
