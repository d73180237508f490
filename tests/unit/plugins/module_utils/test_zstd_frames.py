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


# window sizes (issue 11, class 9) -------------------------------------------------------------

MIB, GIB = 1 << 20, 1 << 30


def window_byte(window_log, mantissa=0):
    """The Window_Descriptor of RFC 8878: exponent (log - 10) in the high 5 bits, eighths in the low 3."""
    return bytes([((window_log - 10) << 3) | mantissa])


def windowed_frame(descriptor_byte, content=b"windowed"):
    """A valid frame with the given Window_Descriptor, no content size, one raw block."""
    return FRAME_MAGIC.to_bytes(4, "little") + b"\x00" + descriptor_byte + raw_block(content, last=True)


def single_segment_frame(content_size, width):
    """A frame header declaring a single segment of content_size bytes (the body is not needed to refuse it)."""
    flag = {1: 0, 2: 1, 4: 2, 8: 3}[width]
    field = (content_size - (256 if width == 2 else 0)).to_bytes(width, "little")
    return FRAME_MAGIC.to_bytes(4, "little") + bytes([(flag << 6) | 0x20]) + field


def decompress_with_window(stream, window):
    """What python-zstandard makes of stream when allowed the given window."""
    with zstandard.ZstdDecompressor(max_window_size=max(window, 1 << 10)).stream_reader(io.BytesIO(stream)) as reader:
        return reader.read()


def refusal(stream, piece=None, max_window=None):
    tracker = ZstdFrameTracker() if max_window is None else ZstdFrameTracker(max_window)
    with pytest.raises(ArchiveError) as info:
        for part in chunks(stream, piece or max(len(stream), 1)):
            tracker.feed(part)
        tracker.finish()
    return info.value.msg, tracker


def too_large(size_text, window_log):
    return ("The zstd stream needs a %s window to be decompressed, more than the 16 MiB this collection allows; re-compress "
            "it with a smaller window, for example with: zstd -d --long=%d -c OLD.tar.zst | zstd -o NEW.tar.zst."
            % (size_text, window_log))


def test_the_cap_is_16_mib():
    """An eighth of what `zstd -d` accepts by default, twice what zstd -19 writes: one window is
    what a stream can make the module hold, on top of what a scan keeps at its caps, and the
    module must stay within 100 MB (issue 11)."""
    assert compression.ZSTD_MAX_WINDOW == 16 * MIB == 1 << 24


@pytest.mark.parametrize("descriptor, window", [
    (window_byte(10), 1024),
    (window_byte(20), MIB),
    (window_byte(20, 7), MIB + 7 * MIB // 8),
    (window_byte(23), 8 * MIB),  # what zstd -19 writes
    (window_byte(23, 7), 8 * MIB + 7 * MIB),
    (window_byte(24), 16 * MIB),  # the cap itself: what zstd --long=24 writes
])
def test_windows_up_to_the_cap_are_accepted(descriptor, window):
    stream = windowed_frame(descriptor)
    assert decompress_with_window(stream, window) == b"windowed"  # the hand-built frame is valid
    assert track(stream).frames == 1
    assert track(stream, 1).frames == 1


@pytest.mark.parametrize("descriptor, size_text, window_log", [
    (window_byte(24, 1), "18 MiB", 25),  # just above the cap
    (window_byte(24, 7), "30 MiB", 25),
    (window_byte(25), "32 MiB", 25),  # what zstd --ultra -20 writes
    (window_byte(25, 1), "36 MiB", 26),
    (window_byte(25, 7), "60 MiB", 26),
    (window_byte(26), "64 MiB", 26),  # what zstd --ultra -21 writes
    (window_byte(26, 1), "72 MiB", 27),
    (window_byte(26, 7), "120 MiB", 27),
    (window_byte(27), "128 MiB", 27),  # what zstd --long and zstd --ultra -22 write
    (window_byte(28), "256 MiB", 28),
    (window_byte(30, 4), "1536 MiB", 31),
    (window_byte(31), "2 GiB", 31),  # what zstd --long=31 writes
])
def test_windows_above_the_cap_are_refused_naming_the_size(descriptor, size_text, window_log):
    stream = windowed_frame(descriptor)
    for piece in (None, 1):
        message, tracker = refusal(stream, piece)
        assert message == too_large(size_text, window_log)
        assert tracker.frames == 0


@pytest.mark.parametrize("exponent, size_text", [(22, "4 GiB"), (31, "2 TiB")])
def test_a_window_no_decoder_accepts_is_corruption(exponent, size_text):
    """Exponents up to 31 fit the descriptor (windows to 2^41 and more); zstd decodes at most 2^31."""
    message, _tracker = refusal(windowed_frame(bytes([exponent << 3])))
    assert message == "The zstd stream is corrupt (a frame declares a %s window, more than any zstd decoder accepts)." % size_text


@pytest.mark.parametrize("content_size, width, text", [
    (200, 1, None),
    (300, 2, None),
    (16 * MIB, 4, None),
    (16 * MIB + 1, 4, too_large("16.0 MiB (16777217 bytes)", 25)),
    (32 * MIB, 4, too_large("32 MiB", 25)),
    (64 * MIB, 4, too_large("64 MiB", 26)),
    (128 * MIB, 4, too_large("128 MiB", 27)),
    (100_000_000, 8, too_large("95.4 MiB (100000000 bytes)", 27)),
    (200_000_000, 8, too_large("190.7 MiB (200000000 bytes)", 28)),
    (GIB, 4, too_large("1 GiB", 30)),
    (1 << 40, 8, "The zstd stream is corrupt (a frame declares a 1 TiB window, more than any zstd decoder accepts)."),
    ((1 << 64) - 1, 8, "The zstd stream is corrupt (a frame declares a 16.0 EiB (18446744073709551615 bytes) window, "
                       "more than any zstd decoder accepts)."),
])
def test_a_single_segment_frame_needs_its_whole_content(content_size, width, text):
    """Without a window descriptor the decoder holds the whole content: its size is the window."""
    header = single_segment_frame(content_size, width)
    tracker = ZstdFrameTracker()
    if text is None:
        tracker.feed(header)  # accepted: a block header is expected next
        with pytest.raises(ArchiveError, match="truncated"):
            tracker.finish()
    else:
        message, _tracker = refusal(header, 1)
        assert message == text


def test_a_large_window_is_refused_from_its_header_before_the_body():
    """The refusal comes as soon as the header's last byte is fed, whatever follows it."""
    stream = windowed_frame(window_byte(31)) + b"\xff" * 1000  # the body would be garbage
    tracker = ZstdFrameTracker()
    tracker.feed(stream[:5])  # magic and frame descriptor: the window is not known yet
    with pytest.raises(ArchiveError, match="2 GiB window"):
        tracker.feed(stream[5:6])


def test_each_frame_of_a_multi_frame_stream_is_checked():
    good = zstd(TEXT, write_checksum=True)
    stream = good + skippable(b"index") + good + windowed_frame(window_byte(29)) + good
    message, tracker = refusal(stream, 100)
    assert message == too_large("512 MiB", 29)
    assert tracker.frames == 2  # refused at the third data frame


def test_a_skippable_payload_is_not_read_as_a_frame_header():
    payload = windowed_frame(window_byte(31))  # would be refused as a frame; here it is only data
    stream = skippable(payload) + zstd(SMALL)
    assert track(stream).frames == 1
    assert track(stream, 1).frames == 1


def test_a_lower_cap_can_be_given():
    message, _tracker = refusal(windowed_frame(window_byte(21)), max_window=MIB)
    assert message.startswith("The zstd stream needs a 2 MiB window to be decompressed, more than the 1 MiB this collection allows;")
    assert track(windowed_frame(window_byte(20))).frames == 1


@pytest.mark.parametrize("cut", range(1, 6))
def test_a_truncated_frame_header_is_one_sentence(cut):
    stream = windowed_frame(window_byte(31))[:cut]  # cut before the window descriptor is complete
    message, _tracker = refusal(stream)
    assert message == "The zstd stream is truncated."


def test_reserved_frame_header_bit():
    stream = bytearray(zstd(SMALL))
    stream[4] |= 0x08
    message, _tracker = refusal(bytes(stream))
    assert message == "The zstd stream is corrupt (reserved bit set in a frame header)."


@pytest.mark.parametrize("window_log", [24, 25, 26, 27, 28, 31])
def test_library_written_windows(window_log):
    """python-zstandard writes the window it is asked for when the content size is unknown."""
    params = zstandard.ZstdCompressionParameters(window_log=window_log, write_checksum=1)
    sink = io.BytesIO()
    writer = zstandard.ZstdCompressor(compression_params=params).stream_writer(sink, closefd=False)
    writer.write(TEXT)
    writer.flush(zstandard.FLUSH_FRAME)
    stream = sink.getvalue()
    assert zstandard.get_frame_parameters(stream).window_size == 1 << window_log
    if window_log <= 24:
        assert track(stream, 7).frames == 1
    else:
        assert refusal(stream, 7)[0] == too_large("%d MiB" % (1 << (window_log - 20)) if window_log < 30 else "2 GiB", window_log)
