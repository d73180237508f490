# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Streaming compression for archives: none, gzip (stdlib zlib) and zstd (python-zstandard).

Reading never trusts a file name: the compression is taken from the first bytes.
"""

from __future__ import annotations

import os
import time
import zlib

from ansible_collections.airgap.docker.plugins.module_utils import progress
from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError, CompressionError
from ansible_collections.airgap.docker.plugins.module_utils.streaming import CHUNK

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
# (lowest, highest, level without compression_level); zstd without one adapts (AdaptiveLevel).
_LEVELS = {GZIP: (0, 9, 6), ZSTD: (-7, 22, None)}
ADAPTIVE = "adaptive"
# Largest block handed out by a decompressing reader: memory stays flat whatever the ratio.
_MAX_OUT = CHUNK
_ZSTD_JOB_SIZE = 2 << 20
# Largest zstd window the reader decodes. A zstd decoder keeps a whole window of output in
# memory (touched as it fills), so this bounds what a stream can make the module hold. It is
# counted with the other caps on what a scan keeps (tarscan.MAX_KEPT_TOTAL, MAX_ENTRIES,
# MAX_NAMES_TOTAL, archive_layout.MAX_JSON_VALUES), which a hostile archive can fill all at once
# behind a full window: with 16 MiB the worst such archive peaks near 90 MB of the 100 MB a module
# run may use (issue 11); with 32 MiB it took 114 MB, with 64 MiB the window alone 111 MB.
# Every zstd level up to 19 writes windows of at most 8 MiB; `zstd --ultra -20` (32 MiB),
# `--ultra -21` (64 MiB), `--ultra -22` and `zstd --long` (128 MiB by default) write larger ones,
# which are refused with a message that names the window and the command to re-compress the
# file. Our own writer stays within it at every level. A stream that declares more is refused
# from its frame header, before any of it is decoded.
ZSTD_MAX_WINDOW = 1 << 24
# No zstd decoder takes more (ZSTD_WINDOWLOG_MAX on 64-bit hosts): a larger one is corruption.
_ZSTD_LARGEST_WINDOW = 1 << 31


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
    """Validate compression_level for kind; return the level to use (None for none, ADAPTIVE for
    zstd without a level)."""
    if kind == NONE:
        return None
    low, high, default = _LEVELS[kind]
    if level is None:
        return default if default is not None else ADAPTIVE
    if level == ADAPTIVE and kind == ZSTD:
        return ADAPTIVE  # as check_level gave it before (open_writer checks again)
    if isinstance(level, bool) or not isinstance(level, int):
        raise CompressionError("compression_level %r is not a level for %s (%d to %d)." % (level, kind, low, high))
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


# gzip members only: zlib's automatic mode (| 32) would also take a zlib stream as a member,
# which no gzip tool, and not Docker, reads.
_GZIP_WBITS = zlib.MAX_WBITS | 16
# zlib's messages that mean "these bytes do not start a gzip member".
_GZIP_HEADER_ERRORS = ("incorrect header check", "unknown compression method", "unknown header flags set")


class _GzipReader:
    """Decompresses concatenated gzip members (pigz, cat a.gz b.gz) in bounded output blocks.

    It tracks whether a member has begun so that a truncated stream is told from a clean end,
    and counts members so that bytes after the last one are told from a damaged member.
    """

    def __init__(self, source):
        self._source = source
        self._inflater = zlib.decompressobj(_GZIP_WBITS)
        self._pending = b""
        self._done = False
        self._member_started = False
        self._members = 0  # complete members

    def read(self, size=_MAX_OUT):
        try:
            return self._read_checked(size)
        except zlib.error as exc:
            raise ArchiveError(self._corruption(exc))

    def _corruption(self, exc):
        reason = str(exc).rpartition(": ")[2]  # zlib's own words, without "Error -3 while decompressing data"
        if self._members and reason in _GZIP_HEADER_ERRORS:
            return "The gzip stream has bytes after its member %d that are not a gzip member (%s)." % (self._members, reason)
        return "The gzip stream is corrupt in member %d (%s)." % (self._members + 1, reason)

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
                self._members += 1
                self._pending = self._inflater.unused_data
                self._inflater = zlib.decompressobj(_GZIP_WBITS)
            if out:
                return out
        return b""


_UNITS = ((1 << 60, "EiB"), (1 << 50, "PiB"), (1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB"))


def _size_text(size):
    """`128 MiB`, `2 GiB`, or `190.7 MiB (200000000 bytes)` when no unit divides it."""
    for unit, name in _UNITS:
        if size >= unit and size % unit == 0:
            return "%d %s" % (size // unit, name)
    unit, name = next((unit, name) for unit, name in _UNITS + ((1, "bytes"),) if size >= unit)
    return "%.1f %s (%d bytes)" % (size / unit, name, size)


class ZstdFrameTracker:
    """Follows the frame and block headers of a zstd stream to tell a complete stream from a
    truncated one, which python-zstandard's reader silently accepts, and to refuse a frame whose
    window exceeds max_window from its header, before it is decoded. Costs O(1) per block."""

    _SKIPPABLE = 0x184D2A50

    def __init__(self, max_window=ZSTD_MAX_WINDOW):
        self._buffer = bytearray()
        self._need = 4
        self._state = "magic"
        self._skip = 0
        self._descriptor = 0
        self._checksum = False
        self._started = False
        self._skippable_seen = False
        self._max_window = max_window
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
            descriptor = self._descriptor = field[0]
            if descriptor & 0x08:
                raise ArchiveError("The zstd stream is corrupt (reserved bit set in a frame header).")
            single_segment = (descriptor >> 5) & 1
            self._checksum = bool((descriptor >> 2) & 1)
            fcs = (single_segment, 2, 4, 8)[descriptor >> 6]
            # Never empty: a window descriptor, or a content size (1 byte at least) in its place.
            self._expect("header", (0 if single_segment else 1) + (0, 1, 2, 4)[descriptor & 3] + fcs)
        elif state == "header":
            self._check_window(self._window_size(field))
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

    def _window_size(self, header):
        """The memory a frame needs to be decoded: its window (RFC 8878 3.1.1.1.2), or for a
        single-segment frame its content size, which the decoder holds whole."""
        descriptor = self._descriptor
        if (descriptor >> 5) & 1:
            width = (1, 2, 4, 8)[descriptor >> 6]
            return int.from_bytes(header[-width:], "little") + (256 if width == 2 else 0)
        exponent, mantissa = header[0] >> 3, header[0] & 7
        base = 1 << (10 + exponent)
        return base + (base >> 3) * mantissa

    def _check_window(self, window):
        if window <= self._max_window:
            return
        if window > _ZSTD_LARGEST_WINDOW:
            raise ArchiveError("The zstd stream is corrupt (a frame declares a %s window, more than any zstd decoder accepts)."
                               % _size_text(window))
        window_log = (window - 1).bit_length()
        raise ArchiveError(
            "The zstd stream needs a %s window to be decompressed, more than the %s this collection allows; re-compress it "
            "with a smaller window, for example with: zstd -d --long=%d -c OLD.tar.zst | zstd -o NEW.tar.zst."
            % (_size_text(window), _size_text(self._max_window), window_log))

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
        # The tracker refuses a larger window first, with a message that names it; the decoder's
        # own limit is set to the same cap so that the two can never disagree.
        decompressor = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW)
        self._reader = decompressor.stream_reader(tracked, read_across_frames=True, closefd=False)
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


# A compressed archive may expand to at most this many times its compressed size, plus a fixed
# allowance. Real image archives expand about 1 to 4 times (layers of the containerd store are
# gzip already); only long runs of one byte go beyond, and a file of a few KiB that decompresses
# to gigabytes of zeros would otherwise keep a run (and the engine's disk) busy for minutes.
# gzip cannot exceed about 1,032 times; zstd reaches about 30,000 on zeros.
MAX_EXPANSION = 2048
EXPANSION_ALLOWANCE = 256 << 20


class _CountingSource:
    """Counts the compressed bytes a decompressor takes from its source."""

    def __init__(self, source):
        self._source = source
        self.count = 0

    def read(self, size=-1):
        data = self._source.read(size)
        self.count += len(data)
        return data

    def readable(self):
        return True


class _ExpansionGuard:
    """Refuses a compressed stream that decompresses to more than MAX_EXPANSION times its size."""

    def __init__(self, reader, counted):
        self._reader = reader
        self._counted = counted
        self._produced = 0

    def read(self, size=_MAX_OUT):
        data = self._reader.read(size)
        self._produced += len(data)
        if self._produced > EXPANSION_ALLOWANCE + MAX_EXPANSION * self._counted.count:
            raise ArchiveError(
                "The compressed stream expands more than %d times (%d bytes from %d); refusing it as a decompression "
                "bomb. Decompress it and compress it again if it is genuine." % (
                    MAX_EXPANSION, self._produced, self._counted.count))
        return data

    def readable(self):
        return True


def open_reader(source, kind):
    """A file-like object with read(n) yielding the decompressed bytes of source.

    The bytes read from source are counted by the progress meter of a load step running in this
    thread, if any (progress.ARCHIVE): that is the archive file, whose size is the total.
    """
    require(kind)
    meter = progress.active(progress.ARCHIVE)
    if meter is not None:
        source = meter.reader(source)
    if kind == NONE:
        return source
    counted = _CountingSource(source)
    reader = _GzipReader(counted) if kind == GZIP else _ZstdReader(counted)
    return _ExpansionGuard(reader, counted)


class _GzipWriter:
    def __init__(self, sink, level):
        self._sink = sink
        self._deflater = zlib.compressobj(level, zlib.DEFLATED, zlib.MAX_WBITS | 16)
        self.level = level

    def write(self, data):
        out = self._deflater.compress(data)
        if out:
            self._sink.write(out)

    def finish(self):
        self._sink.write(self._deflater.flush())


def _zstd_writer(sink, level, threads):
    """A python-zstandard stream writer of one frame at level into sink (which stays open)."""
    return _zstd_compressor(level, threads).stream_writer(sink, closefd=False)


def _zstd_compressor(level, threads):
    """A compressor at level; its frame_progression() tells what the current frame has made so far.

    The frame checksum lets any reader detect a corrupted archive, also without our sidecar.
    2 MiB jobs keep the workers' buffers small: a save from the containerd store peaked at 86 MiB
    with 4 MiB jobs, 60 MiB with 2 MiB (the default, 4x the window, costs more), for an archive up
    to 1 % larger and the same CPU on a 2-core machine. Levels 20 to 22 ask for 32 to 128 MiB windows,
    more than the reader accepts: capped at the reader's.
    """
    window_log = min(zstandard.ZstdCompressionParameters.from_level(level).window_log, ZSTD_MAX_WINDOW.bit_length() - 1)
    params = zstandard.ZstdCompressionParameters.from_level(level, threads=threads, write_checksum=1, job_size=_ZSTD_JOB_SIZE,
                                                            window_log=window_log)
    return zstandard.ZstdCompressor(compression_params=params)


class _ZstdWriter:
    """One zstd frame at a fixed level: the same input gives the same bytes."""

    def __init__(self, sink, level, threads):
        self._writer = _zstd_writer(sink, level, threads)
        self.level = level
        self.write = self._writer.write

    def finish(self):
        self._writer.close()  # ends the frame (a flush first would add an empty frame)


class CpuIdle:
    """Idle cores of this machine between two calls, from /proc/stat (None where it cannot be read)."""

    def __init__(self, path="/proc/stat"):
        self._path = path
        self._last = self._read()

    def _read(self):
        try:
            with open(self._path, "rb") as handle:
                fields = [int(value) for value in handle.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        # user nice system idle iowait irq softirq steal: a core waiting for I/O is free to compress.
        return sum(fields[3:5]), sum(fields[:8]), os.cpu_count() or 1

    def sample(self):
        now, last = self._read(), self._last
        self._last = now
        if now is None or last is None or now[1] <= last[1]:
            return None
        return (now[0] - last[0]) / (now[1] - last[1]) * now[2]


class AdaptiveLevel:
    """The zstd level of the next stretch of an archive, from how the last stretch went.

    Like `zstd --adapt`, the level falls when compression holds the stream up and rises when the
    input is the slower side. Unlike it, this also watches the machine's idle CPU: on a small host
    that runs the engine too, a higher level slows the engine producing the stream, which then
    looks like the slower side although compression is what holds it back. And it watches what the
    last stretch compressed to: data that does not compress (the gzip layers of a containerd
    store's save) goes to the lowest level at once, since a higher one only burns CPU on it (on
    such a save, 1.14 s at level 3 against 0.41 s at level 1 for 376 MiB, 1.3 % larger). Pure: the
    caller measures.
    """

    LOWEST, HIGHEST, START = 1, 6, 3
    # The writer is the bottleneck when it spends more than this share of a stretch writing.
    BUSY = 0.6
    # ... and has room when it spends less than this share writing, the rest waiting for input.
    ROOM = 0.3
    # Idle cores below which compression competes with the engine (or anything else) for CPU,
    # and above which a higher level costs nothing else.
    SATURATED, SPARE = 0.25, 0.6
    # A level is raised only after this many stretches in a row with room: it falls at once.
    PATIENCE = 2
    # A stretch whose output is more than this share of its input did not compress.
    INCOMPRESSIBLE = 0.95

    def __init__(self, lowest=LOWEST, highest=HIGHEST, start=START):
        self.lowest, self.highest = lowest, highest
        self.level = min(max(start, lowest), highest)
        self._roomy = 0

    def next_level(self, busy_share, idle_cores, ratio=None):
        """The level for the next stretch, given the share of the last one spent writing, the idle
        cores during it and the size of its output against its input (each None when unknown)."""
        if ratio is not None and ratio > self.INCOMPRESSIBLE:
            self._roomy = 0
            self.level = self.lowest
        elif busy_share > self.BUSY or (idle_cores is not None and idle_cores < self.SATURATED):
            self._roomy = 0
            self.level = max(self.lowest, self.level - 1)
        elif busy_share < self.ROOM and (idle_cores is None or idle_cores >= self.SPARE):
            self._roomy += 1
            if self._roomy >= self.PATIENCE:
                self._roomy = 0
                self.level = min(self.highest, self.level + 1)
        else:
            self._roomy = 0
        return self.level


class _AdaptiveZstdWriter:
    """zstd whose level follows AdaptiveLevel, decided every STRETCH bytes of input.

    A new level starts a new zstd frame (python-zstandard sets a level per frame); a stream of
    frames is one valid zstd stream for every reader. `levels` records the input bytes each level
    compressed. The bytes depend on timing, so only an explicit level gives a reproducible archive.
    """

    STRETCH = 32 << 20

    def __init__(self, sink, threads, controller=None, cpu=None, clock=time.monotonic):
        self._sink, self._threads = sink, threads
        self._controller = controller or AdaptiveLevel()
        self._cpu = cpu or CpuIdle()
        self._clock = clock
        self.levels = {}
        self._level = self._controller.level
        self._start_frame()
        self._stretch_bytes = 0
        self._stretch_started = None  # the first write's start
        self._busy = 0.0

    def write(self, data):
        started = self._clock()
        if self._stretch_started is None:
            self._stretch_started = started
        self.levels[self._level] = self.levels.get(self._level, 0) + len(data)
        self._writer.write(data)
        self._stretch_bytes += len(data)
        now = self._clock()
        self._busy += now - started
        if self._stretch_bytes >= self.STRETCH:
            self._next_stretch(now)

    def _start_frame(self):
        self._compressor = _zstd_compressor(self._level, self._threads)
        self._writer = self._compressor.stream_writer(self._sink, closefd=False)
        self._progress = (0, 0)  # input compressed and output made, at the stretch's start

    def _stretch_ratio(self):
        """Output against input of what the workers compressed in this stretch (None if nothing yet:
        they compress in jobs, behind the writes)."""
        _ingested, consumed, produced = self._compressor.frame_progression()
        (consumed_before, produced_before), self._progress = self._progress, (consumed, produced)
        return (produced - produced_before) / (consumed - consumed_before) if consumed > consumed_before else None

    def _next_stretch(self, now):
        elapsed = max(now - self._stretch_started, 1e-9)
        level = self._controller.next_level(min(self._busy / elapsed, 1.0), self._cpu.sample(), self._stretch_ratio())
        if level != self._level:
            self._writer.close()
            # Dropped before the next is made: two compressors with their workers' buffers at once
            # took 10 MiB more at the peak.
            self._writer = self._compressor = None
            self._level = level
            self._start_frame()
        self._stretch_bytes, self._busy, self._stretch_started = 0, 0.0, now

    def finish(self):
        self._writer.close()  # ends the frame (a flush first would add an empty frame)


class _PlainWriter:
    level = None

    def __init__(self, sink):
        self.write = sink.write

    def finish(self):
        pass


def open_writer(sink, kind, level=None, threads=-1):
    """A writer that compresses into sink; call finish() to end the stream (sink stays open).

    zstd runs on `threads` worker threads (-1: one per CPU) so compression overlaps with reading
    the engine's stream; without a level (ADAPTIVE) its level follows AdaptiveLevel, and the
    writer's `levels` maps each level used to the input bytes it compressed. The other writers
    keep one `level` (None without compression).
    """
    require(kind)
    level = check_level(kind, level)
    if kind == NONE:
        return _PlainWriter(sink)
    if kind == GZIP:
        return _GzipWriter(sink, level)
    if level == ADAPTIVE:
        return _AdaptiveZstdWriter(sink, threads)
    return _ZstdWriter(sink, level, threads)


def level_facts(writer, tar_size):
    """What a finished writer of tar_size input bytes records of its compression, for the sidecar
    and the module's result: `compression_levels` (the input bytes each level compressed, keyed
    by the level as text, as JSON keys are) and `compression_adaptive`; nothing for an archive
    without compression."""
    adaptive = isinstance(writer, _AdaptiveZstdWriter)
    levels = writer.levels if adaptive else {writer.level: tar_size} if writer.level is not None else {}
    if not levels:
        return {}
    return {"compression_levels": {str(used): count for used, count in sorted(levels.items())}, "compression_adaptive": adaptive}


def recorded_level_facts(archive):
    """level_facts as a document records them (a memo, a sidecar), when they have that shape; else nothing."""
    levels, adaptive = archive.get("compression_levels"), archive.get("compression_adaptive")
    if not (isinstance(levels, dict) and isinstance(adaptive, bool) and 0 < len(levels) <= 32):
        return {}
    if not all(isinstance(count, int) and not isinstance(count, bool) and count >= 0 for count in levels.values()):
        return {}
    return {"compression_levels": dict(levels), "compression_adaptive": adaptive}
