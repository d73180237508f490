# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A large file written past the page cache (O_DIRECT), by a thread of its own.

An archive must be on disk before it is renamed into place. Written through the page cache, a
GiB is first copied into cached pages (1 s of system CPU per GiB on a 2-core host, on cores the
engine needs) and then written back by the kernel, which on the test hosts took 1.9 to 8.3 s per
GiB before the fsync returned. Written with O_DIRECT from aligned buffers, the same GiB reached
the disk in 0.9 to 1.15 s, and the fsync before the rename finds almost nothing left to write.

The bytes are gathered in page-aligned buffers (mmap) of BUFFER bytes; a full buffer is handed
to a writer thread, which writes it while the next one fills, so the disk works while the stream
is read. A tail shorter than a buffer is written through the page cache: O_DIRECT needs lengths
and offsets aligned to the disk's blocks. A file system that refuses O_DIRECT (tmpfs on older
kernels, some network file systems) gets every byte through the page cache instead, with the
same result on disk.
"""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
import queue
import threading

from ansible_collections.airgap.docker.plugins.module_utils.streaming import WRITE_PIECE

# A multiple of every block size in use (512 B to 4 KiB); large enough that each write's fixed
# cost is small against its transfer, small enough that the BUFFERS of them stay a few MiB (one
# filling, one being written, one queued between).
BUFFER = 4 << 20
BUFFERS = 3
_STOP = object()


def _write_all(fd: int, data) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _write_direct(fd: int, view) -> int:
    """One write() of an aligned buffer to a descriptor in O_DIRECT mode; the bytes it took."""
    return os.write(fd, view)


def _set_direct(fd: int, on: bool) -> bool:
    """Turn O_DIRECT on or off for fd; False when the file system does not take it."""
    direct = getattr(os, "O_DIRECT", 0)
    if not direct:
        return False
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    try:
        fcntl.fcntl(fd, fcntl.F_SETFL, (flags | direct) if on else (flags & ~direct))
    except OSError:
        return False
    return True


class DirectFile:
    """A binary file, open for writing at offset 0, that takes write(), flush(), fileno() and
    close() like the file objects it stands in for, and discard() for a file about to be removed.
    It owns fd and closes it."""

    def __init__(self, fd: int):
        self._fd = fd
        self._direct = _set_direct(fd, True)
        self._buffers = None
        self._current = None
        self._filled = 0
        self._free = None
        self._full = None
        self._writer = None
        self._error = None
        self._cached_only = False  # set by the writer thread when the file system refused O_DIRECT
        self._discarding = False
        self.closed = False

    @property
    def bypasses_cache(self) -> bool:
        """Whether the bytes written now go past the page cache."""
        return self._direct and not self._cached_only

    def fileno(self) -> int:
        return self._fd

    def write(self, data) -> int:
        if self.closed:
            raise ValueError("write to a closed file")
        self._raise_error()
        view = memoryview(data).cast("B")
        size = len(view)
        if not self._direct:
            self._write_cached(self._fd, view)
            return size
        while view:
            if self._current is None:
                self._current = self._take_buffer()
            taken = min(BUFFER - self._filled, len(view))
            self._current[self._filled:self._filled + taken] = view[:taken]
            self._filled += taken
            view = view[taken:]
            if self._filled == BUFFER:
                # Let go of the buffer before handing it over: were the hand-off interrupted, a
                # flush must not write it a second time as the tail.
                full, self._current, self._filled = self._current, None, 0
                self._full.put(full)
        return size

    def flush(self) -> None:
        """Every byte written so far handed to the kernel. A tail shorter than a buffer goes through
        the page cache, and whatever is written after it too (the offset is no longer aligned)."""
        self._drain()
        if self._filled:
            tail = memoryview(self._current)[:self._filled]
            _set_direct(self._fd, False)
            self._direct = False
            self._write_cached(self._fd, tail)
            tail.release()
            self._filled = 0

    def close(self) -> None:
        if self.closed:
            return
        try:
            self.flush()
        finally:
            self._shut()

    def discard(self) -> None:
        """Close without writing what is still pending, for a file about to be removed: queued
        buffers are dropped and the tail is not written, so an abort (a signal, a failure) does
        not wait for megabytes to reach a disk that may be slow or full."""
        if self.closed:
            return
        self._discarding = True
        self._shut()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _shut(self):
        self.closed = True
        try:
            self._stop_writer()
        finally:
            os.close(self._fd)
            for buffer in self._buffers or ():
                try:
                    buffer.close()
                except BufferError:
                    pass  # a view of it is held by a stored exception's traceback; freed with it

    @staticmethod
    def _write_cached(fd, view) -> None:
        for start in range(0, len(view), WRITE_PIECE):  # see WRITE_PIECE for why not more at once
            _write_all(fd, view[start:start + WRITE_PIECE])

    def _take_buffer(self):
        if self._writer is None:
            self._start_writer()
        buffer = self._free.get()
        self._raise_error()
        return buffer

    def _start_writer(self):
        self._buffers = [mmap.mmap(-1, BUFFER) for _index in range(BUFFERS)]
        self._free, self._full = queue.Queue(), queue.Queue()
        for buffer in self._buffers:
            self._free.put(buffer)
        # The thread writes through a descriptor of its own, which it closes when it ends: were
        # close() interrupted before the thread ended, the thread could otherwise write to
        # whatever file reused the closed descriptor's number.
        writer_fd = os.dup(self._fd)
        writer = threading.Thread(target=self._write_buffers, args=(writer_fd,), name="airgap-direct-write", daemon=True)
        try:
            writer.start()
        except BaseException:
            os.close(writer_fd)
            raise
        self._writer = writer

    def _write_buffers(self, fd):
        """The writer thread: writes each full buffer in turn and gives it back. After a failure,
        or once discarding, it only gives buffers back, so that write() never waits for a thread
        that has given up."""
        try:
            while True:
                buffer = self._full.get()
                if buffer is _STOP:
                    return
                if self._error is None and not self._discarding:
                    try:
                        self._write_buffer(fd, buffer)
                    except BaseException as exc:  # raised in the writing thread by write() or flush()
                        self._error = exc
                self._full.task_done()
                self._free.put(buffer)
        finally:
            os.close(fd)

    def _write_buffer(self, fd, buffer):
        view = memoryview(buffer)
        if not self._cached_only:
            try:
                written = _write_direct(fd, view)
            except OSError as exc:
                # A file system that took the O_DIRECT flag but refuses the writes: nothing of the
                # first buffer was written, so it and every later one go through the page cache.
                if exc.errno != errno.EINVAL or os.lseek(fd, 0, os.SEEK_CUR) != 0:
                    raise
                written = 0
            if written == len(view):
                return
            # Refused, or a short write (a disk filling up): what is left is not aligned, so it
            # and the rest go through the page cache, which also reports a full disk as such.
            _set_direct(fd, False)
            self._cached_only = True
            view = view[written:]
        self._write_cached(fd, view)

    def _drain(self):
        if self._writer is not None:
            self._full.join()
        self._raise_error()

    def _stop_writer(self):
        if self._writer is not None:
            writer, self._writer = self._writer, None
            self._full.put(_STOP)
            writer.join()

    def _raise_error(self):
        if self._error is not None:
            raise self._error
