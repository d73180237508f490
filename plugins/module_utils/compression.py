# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Streaming compression for archives: none, gzip (stdlib zlib) and zstd (python-zstandard).

Reading never trusts a file name: the compression is taken from the first bytes.
"""

from __future__ import annotations

import zlib

from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError, CompressionError

try:
    import zstandard
except ImportError:  # pragma: no cover - depends on the managed host
    zstandard = None

NONE = "none"
GZIP = "gzip"
ZSTD = "zstd"
KINDS = (NONE, GZIP, ZSTD)

_SUFFIXES = ((".tar.gz", GZIP), (".tgz", GZIP), (".tar.zst", ZSTD), (".tar.zstd", ZSTD), (".tzst", ZSTD), (".tar", NONE))
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_LEVELS = {GZIP: (0, 9, 6), ZSTD: (-7, 22, 3)}
# Largest block handed out by a decompressing reader: memory stays flat whatever the ratio.
_MAX_OUT = 1 << 20
_ZSTD_JOB_SIZE = 4 << 20


def from_suffix(path):
    """The compression a file name asks for (`auto`), or CompressionError."""
    lower = path.lower()
    for suffix, kind in _SUFFIXES:
        if lower.endswith(suffix):
            return kind
    raise CompressionError(
        "Cannot choose a compression from the name %r: use a .tar, .tar.gz, .tgz or .tar.zst "
        "suffix, or set compression explicitly." % path
    )


def resolve(requested, path):
    """`auto` -> kind from the suffix; otherwise the requested kind."""
    return from_suffix(path) if requested in (None, "auto") else requested


def detect(head):
    """Compression of a stream from its first bytes; None when it is not an archive we know."""
    if head.startswith(_GZIP_MAGIC):
        return GZIP
    if head.startswith(_ZSTD_MAGIC):
        return ZSTD
    if len(head) >= 262 and head[257:262] == b"ustar":
        return NONE
    return None


def check_level(kind, level):
    """Validate compression_level for kind; return the level to use (None for none)."""
    if kind == NONE:
        return None
    low, high, default = _LEVELS[kind]
    if level is None:
        return default
    if not low <= level <= high:
        raise CompressionError("compression_level %d is out of range for %s (%d to %d)." % (level, kind, low, high))
    return level


def require(kind):
    """Fail clearly when kind cannot be handled on this host."""
    if kind not in KINDS:
        raise CompressionError("Unsupported compression %r; supported are: %s." % (kind, ", ".join(KINDS)))
    if kind == ZSTD and zstandard is None:
        raise CompressionError(
            "zstd needs the Python package zstandard on the managed host (pip install zstandard); "
            "use gzip or none where it cannot be installed."
        )


class _GzipReader:
    """Decompresses concatenated gzip members (pigz, cat a.gz b.gz) in bounded output blocks.

    It tracks whether a member has begun so that a truncated stream is told from a clean end.
    """

    def __init__(self, source):
        self._source = source
        self._inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)
        self._pending = b""
        self._done = False
        self._member_started = False

    def read(self, size=_MAX_OUT):
        try:
            return self._read_checked(size)
        except zlib.error as exc:
            raise ArchiveError("The gzip stream is corrupt (%s)." % exc)

    def _read_checked(self, size):
        size = min(size if size and size > 0 else _MAX_OUT, _MAX_OUT)
        while not self._done:
            data = self._pending or self._inflater.unconsumed_tail
            if not data:
                data = self._source.read(_MAX_OUT)
                if not data:
                    if self._member_started:
                        raise ArchiveError("The gzip stream is truncated.")
                    self._done = True
                    return b""
            self._pending = b""
            self._member_started = True
            out = self._inflater.decompress(data, size)
            if self._inflater.eof:
                self._member_started = False
                self._pending = self._inflater.unused_data
                self._inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)
            if out:
                return out
        return b""


class ZstdFrameTracker:
    """Follows the frame and block headers of a zstd stream to tell a complete stream from a
    truncated one, which python-zstandard's reader silently accepts. Costs O(1) per block."""

    _SKIPPABLE = 0x184D2A50

    def __init__(self):
        self._buffer = bytearray()
        self._need = 4
        self._state = "magic"
        self._skip = 0
        self._checksum = False
        self._started = False
        self._skippable_seen = False
        self.frames = 0  # complete data frames

    def feed(self, data):
        view, pos = memoryview(data), 0
        self._started = self._started or bool(data)
        while pos < len(view):
            if self._skip:
                take = min(self._skip, len(view) - pos)
                self._skip -= take
                pos += take
                if not self._skip and self._state == "body":
                    self._expect("block", 3)
                continue
            take = min(self._need - len(self._buffer), len(view) - pos)
            self._buffer += view[pos:pos + take]
            pos += take
            if len(self._buffer) == self._need:
                field, self._buffer = bytes(self._buffer), bytearray()
                self._advance(field)

    def _expect(self, state, need):
        self._state, self._need = state, need

    def _advance(self, field):
        state = self._state
        if state == "magic":
            magic = int.from_bytes(field, "little")
            if magic == 0xFD2FB528:
                self._expect("descriptor", 1)
            elif magic & 0xFFFFFFF0 == self._SKIPPABLE:
                self._expect("skip_size", 4)
            else:
                raise ArchiveError("The zstd stream is corrupt (bad frame magic).")
        elif state == "skip_size":
            self._skip = int.from_bytes(field, "little")
            self._skippable_seen = True  # complete once its body is skipped
            self._expect("magic", 4)
        elif state == "descriptor":
            descriptor = field[0]
            single_segment = (descriptor >> 5) & 1
            self._checksum = bool((descriptor >> 2) & 1)
            fcs = (single_segment, 2, 4, 8)[descriptor >> 6]
            rest = (0 if single_segment else 1) + (0, 1, 2, 4)[descriptor & 3] + fcs
            self._expect("header", rest) if rest else self._expect("block", 3)
        elif state == "header":
            self._expect("block", 3)
        elif state == "block":
            header = int.from_bytes(field, "little")
            last, block_type, size = header & 1, (header >> 1) & 3, header >> 3
            if block_type == 3:
                raise ArchiveError("The zstd stream is corrupt (reserved block type).")
            self._skip = 1 if block_type == 1 else size
            if last:
                self.frames += 1
                # The last block's body is skipped first; the state names what follows it.
                self._expect("checksum", 4) if self._checksum else self._expect("magic", 4)
            else:
                self._expect("body", 0)
                if not self._skip:
                    self._expect("block", 3)
        elif state == "checksum":
            self._expect("magic", 4)

    def finish(self):
        if not self._started:
            return  # an empty source is empty, not truncated
        if self._skip or self._buffer or self._state != "magic" or not (self.frames or self._skippable_seen):
            raise ArchiveError("The zstd stream is truncated.")


class _TrackedSource:
    """Passes reads through while a ZstdFrameTracker watches the compressed bytes."""

    def __init__(self, source, tracker):
        self._source = source
        self._tracker = tracker

    def read(self, size=-1):
        data = self._source.read(size)
        self._tracker.feed(data)
        return data

    def readable(self):
        return True


class _ZstdReader:
    def __init__(self, source):
        self._tracker = ZstdFrameTracker()
        tracked = _TrackedSource(source, self._tracker)
        self._reader = zstandard.ZstdDecompressor().stream_reader(tracked, read_across_frames=True, closefd=False)
        self._done = False

    def read(self, size=_MAX_OUT):
        if self._done:
            return b""
        size = min(size if size and size > 0 else _MAX_OUT, _MAX_OUT)
        try:
            data = self._reader.read(size)
        except zstandard.ZstdError as exc:
            raise ArchiveError("The zstd stream is corrupt (%s)." % exc)
        if not data:
            self._done = True
            self._tracker.finish()
        return data


def open_reader(source, kind):
    """A file-like object with read(n) yielding the decompressed bytes of source."""
    require(kind)
    if kind == NONE:
        return source
    if kind == GZIP:
        return _GzipReader(source)
    return _ZstdReader(source)


class _GzipWriter:
    def __init__(self, sink, level):
        self._sink = sink
        self._deflater = zlib.compressobj(level, zlib.DEFLATED, zlib.MAX_WBITS | 16)

    def write(self, data):
        out = self._deflater.compress(data)
        if out:
            self._sink.write(out)

    def finish(self):
        self._sink.write(self._deflater.flush())


class _ZstdWriter:
    def __init__(self, sink, level, threads):
        # The frame checksum lets any reader detect a corrupted archive, also without our sidecar.
        # 4 MiB jobs keep the workers' buffers near 30 MiB (the default, 4x the window, costs
        # about 55 MiB) at the same speed on a 2-core machine.
        params = zstandard.ZstdCompressionParameters.from_level(level, threads=threads, write_checksum=1, job_size=_ZSTD_JOB_SIZE)
        self._writer = zstandard.ZstdCompressor(compression_params=params).stream_writer(sink, closefd=False)

    def write(self, data):
        self._writer.write(data)

    def finish(self):
        self._writer.flush(zstandard.FLUSH_FRAME)
        self._writer.close()


class _PlainWriter:
    def __init__(self, sink):
        self.write = sink.write

    def finish(self):
        pass


def open_writer(sink, kind, level=None, threads=-1):
    """A writer that compresses into sink; call finish() to end the stream (sink stays open).

    zstd runs on `threads` worker threads (-1: one per CPU) so compression overlaps with
    reading the engine's stream.
    """
    require(kind)
    level = check_level(kind, level)
    if kind == NONE:
        return _PlainWriter(sink)
    if kind == GZIP:
        return _GzipWriter(sink, level)
    return _ZstdWriter(sink, level, threads)
