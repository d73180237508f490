# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""How far a long save, load, export or import has come, as lines appended to a file that an
operator can follow with `tail -f` while the module runs (for example under async).

A step is watched with `saving(...)` or `loading(...)` around the call that streams. While it
runs, the stream helpers find its meter (`active`) and count what passes: streaming.prefetch
the uncompressed tar a save writes, compression.open_reader the archive file a load reads. They
look it up once per stream, so a run without a progress file pays nothing per block.

A progress file never fails a task: a file that cannot be opened or written is given up with
one warning.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import os
import stat
import threading
import time

from ansible_collections.airgap.docker.plugins.module_utils.disk_space import human_size
from ansible_collections.airgap.docker.plugins.module_utils.errors import one_line

# What a meter counts, and so which stream helper feeds it.
TAR = "tar"  # the uncompressed tar a save or export streams (streaming.prefetch)
ARCHIVE = "archive"  # the archive file a load or import reads (compression.open_reader)

INTERVAL = 5.0  # while bytes flow, a line once this many seconds passed without one...
STEP = 0.1  # ...or as soon as another tenth of a known total has passed
# The meter looks at the clock about this often, counting calls in between rather than reading
# the clock on every block.
_CHECK = 0.5
_MAX_CALLS = 1024

_FLAGS = (os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NOCTTY
          # A FIFO planted at the path would block an open for writing until someone reads it.
          | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))

_active = contextvars.ContextVar("airgap_docker_progress", default=None)
# Progress files warned about: a module runs one task, which may watch several steps, and
# says once that its file is unusable.
_warned = set()


def active(counts: str):
    """The meter of the step running now when it counts `counts` (TAR or ARCHIVE), else None."""
    meter = _active.get()
    return meter if meter is not None and meter.counts == counts else None


def estimate(total: int | None) -> None:
    """Give the step running now the size it expects, once learnt inside it (an export's container size)."""
    meter = _active.get()
    if meter is not None and total:
        meter.expect(total)


def saving(progress_file: str | None, what: str, archive: str, estimated: int | None = None, warn=None):
    """Watch the writing of `archive`, counted on the uncompressed tar; `estimated` is what the
    engine says the images weigh, when it says (a save never knows its size for sure)."""
    return watch(progress_file, what, TAR, estimated or None, True, warn, (archive,))


def loading(progress_file: str | None, what: str, archive: str, warn=None):
    """Watch a read of the whole `archive` (into the engine, or to verify it), against its size (its
    parts' together, when it is held as parts); without a progress file, nothing is looked at."""
    size = None
    if progress_file:
        # Imported here: archive_files reads through streaming, which looks up the meter of this module.
        from ansible_collections.airgap.docker.plugins.module_utils.archive_files import archive_stat  # pylint: disable=import-outside-toplevel

        try:
            size = getattr(archive_stat(archive), "st_size", None)
        except OSError:
            pass  # the step itself says what is wrong with the archive
    return watch(progress_file, what, ARCHIVE, size or None, False, warn, (archive,))


@contextlib.contextmanager
def watch(progress_file, what, counts, total=None, estimated=False, warn=None, keep_off=()):
    """Within the block, the stream helpers feed a meter writing to progress_file; the last line
    says whether the block ended or raised. Without a usable file, nothing is counted."""
    sink = ProgressFile.open(progress_file, warn, keep_off) if progress_file else None
    if sink is None:
        yield None
        return
    meter = Meter(sink, what, counts, total, estimated)
    token = _active.set(meter)
    try:
        yield meter
    except BaseException as exc:
        meter.finish(exc)
        raise
    else:
        meter.finish()
    finally:
        _active.reset(token)


class ProgressFile:
    """Appends lines to one regular file; never raises. The first failure warns once, and
    nothing is written after it."""

    def __init__(self, path, fd, warn=None):
        self.path = path
        self._fd = fd
        self._warn = warn

    @classmethod
    def open(cls, path, warn=None, keep_off=()):
        """A ProgressFile, or None (after one warning) when path cannot serve as one."""
        try:
            return cls(path, _open_append(path, keep_off), warn)
        except OSError as exc:
            _warn(warn, path, exc)
            return None

    def write(self, line: str) -> None:
        if self._fd is None:
            return
        data = (line + "\n").encode("utf-8", "replace")
        try:
            while data:  # a short write happens only as the disk fills; the next one says why
                data = data[os.write(self._fd, data):]
        except OSError as exc:
            self.close()
            _warn(self._warn, self.path, exc)

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass


class _Refused(OSError):
    """A file that is there but must not be written to."""


def _open_append(path, keep_off):
    """A descriptor appending to path, created 0600 when missing. Only a regular file with one
    link that is none of keep_off (the task's archives) is kept: the module often runs as root."""
    if any(_same_path(path, other) for other in keep_off):
        raise _Refused("it is the archive itself")
    fd = os.open(path, _FLAGS, 0o600)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _Refused("it is not a regular file")
        if info.st_nlink > 1:
            raise _Refused("it has other hard links")
        if any(_same_file(info, other) for other in _with_parts(keep_off)):
            raise _Refused("it is the archive itself")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _same_path(path, other):
    """path is `other`, or one of the files that go with it: its parts (.part001, ...), its sidecar,
    its temporary files (all named `other` + "." + something, or "." + name + "." + something)."""
    path, other = os.path.abspath(path), os.path.abspath(other)
    hidden = os.path.join(os.path.dirname(other), "." + os.path.basename(other) + ".")
    return path == other or path.startswith(other + ".") or path.startswith(hidden)


def _with_parts(archives):
    """The archives and the parts each is held as now: a hard link or a name that leads to one of
    them is refused as the archive itself is."""
    # Imported here: archive_parts reads through streaming, which looks up the meter of this module.
    from ansible_collections.airgap.docker.plugins.module_utils.archive_parts import existing_parts  # pylint: disable=import-outside-toplevel

    return [path for archive in archives for path in [archive] + existing_parts(archive)]


def _same_file(info, other):
    try:
        there = os.stat(other)
    except OSError:
        return False
    return (info.st_dev, info.st_ino) == (there.st_dev, there.st_ino)


def _warn(warn, path, exc):
    if isinstance(exc, _Refused):
        reason = str(exc)
    elif exc.errno in (errno.ELOOP, errno.EMLINK) and os.path.islink(path):
        reason = "it is a symbolic link, which is not followed"
    elif exc.errno == errno.ENXIO:
        reason = "it is a FIFO or device, not a regular file"
    else:
        reason = exc.strerror or str(exc)
    if warn is not None and path not in _warned:
        _warned.add(path)
        warn("progress_file %s cannot be written (%s); the task goes on without progress lines." % (one_line(path), reason))


class Meter:
    """Counts the bytes of one step and writes a line now and then. add() costs a few attribute
    updates; it reads the clock about twice a second and writes only when a line is due.

    clock is monotonic (rates and intervals), wall the time printed; both are there for tests.
    """

    def __init__(self, sink, what, counts=TAR, total=None, estimated=False, clock=time.monotonic, wall=time.time):
        self.what = one_line(what)
        self.counts = counts
        self.count = 0
        self.total = total
        self.estimated = estimated
        self._sink, self._clock, self._wall = sink, clock, wall
        self._started = self._last_line = self._last_check = clock()
        self._calls = self._left = 1  # add() calls from one clock check to the next, adapted to the rate
        self._mark = self._next_mark()
        # add() runs on a reader thread during a load while finish() runs on the module's thread.
        self._lock = threading.Lock()
        self._closed = False
        self._write("started" + (", %s %s" % ("about" if estimated else "of", human_size(total)) if total else ""))

    def add(self, size: int) -> None:
        """Count size bytes; called by the stream helpers for every block."""
        self.count += size
        self._left -= 1
        if self._left <= 0 or self.count >= self._mark:
            self._checkpoint()

    def reader(self, source):
        """source (anything with read) with every byte read counted."""
        return _MeteredReader(source, self)

    def expect(self, total: int) -> None:
        """Set an estimated total learnt after the step began."""
        if self.total is None:
            self.total, self.estimated = total, True
            self._mark = self._next_mark()

    def finish(self, error: BaseException | None = None) -> None:
        """Write the last line (done, or failed with the error's message) and close the file."""
        with self._lock:
            if self._closed:
                return
            elapsed = self._clock() - self._started
            text = "done, %s in %s%s" % (human_size(self.count), duration(elapsed), self._rate_text(elapsed))
            if error is not None:
                text = "failed after %s in %s: %s" % (human_size(self.count), duration(elapsed), _reason(error))
            self._sink.write(self._stamp(text))
            self._closed = True
            self._sink.close()

    def _checkpoint(self):
        now = self._clock()
        self._pace(now)
        if self.count >= self._mark or now - self._last_line >= INTERVAL:
            self._last_line = now
            self._mark = self._next_mark()
            self._write(self._progress_text(now))

    def _pace(self, now):
        """Let about _CHECK seconds of calls pass before the next clock check."""
        calls = self._calls - self._left
        elapsed = now - self._last_check
        self._last_check = now
        wanted = calls * 2 if elapsed <= 0 else int(calls * _CHECK / elapsed)
        self._calls = self._left = max(1, min(_MAX_CALLS, wanted))

    def _next_mark(self):
        """The count at which the next tenth of the total is passed; never, without a total."""
        if not self.total or self.count >= self.total:
            return float("inf")
        step = max(1, int(self.total * STEP))
        return (self.count // step + 1) * step

    def _progress_text(self, now):
        elapsed = now - self._started
        done, rate = human_size(self.count), self._rate_text(elapsed)
        if not self.total:
            return done + rate
        if self.count > self.total:
            return "%s (more than the %s expected)%s" % (done, human_size(self.total), rate)
        left = ""
        if 0 < self.count < self.total and elapsed > 0:  # at the whole, a load still waits for the engine
            left = ", about %s left" % duration((self.total - self.count) * elapsed / self.count)
        about = "about " if self.estimated else ""
        return "%s of %s%s (%d%%)%s%s" % (done, about, human_size(self.total), 100 * self.count // self.total, rate, left)

    def _rate_text(self, elapsed):
        return ", %s/s" % human_size(self.count / elapsed) if elapsed > 0 else ""

    def _write(self, text):
        with self._lock:
            if not self._closed:
                self._sink.write(self._stamp(text))

    def _stamp(self, text):
        return "%s %s: %s" % (time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self._wall())), self.what, text)


class _MeteredReader:
    """Passes reads through, counting the bytes."""

    def __init__(self, source, meter):
        self._read = source.read
        self._meter = meter

    def read(self, size=-1):
        data = self._read(size)
        if data:
            self._meter.add(len(data))
        return data

    def readable(self):
        return True


def _reason(error):
    text = getattr(error, "msg", None) or str(error) or type(error).__name__
    text = one_line(text)
    return text if len(text) <= 300 else text[:297] + "..."


def duration(seconds: float) -> str:
    """42 s, 3 min 05 s, 2 h 07 min."""
    seconds = int(seconds + 0.5)
    if seconds < 60:
        return "%d s" % seconds
    if seconds < 3600:
        return "%d min %02d s" % divmod(seconds, 60)
    return "%d h %02d min" % (seconds // 3600, seconds % 3600 // 60)
