# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Streams of blocks: a file read in chunks, and an iterable read ahead in a background thread."""

from __future__ import annotations

import queue
import threading
from typing import Iterable, Iterator

from ansible_collections.airgap.docker.plugins.module_utils import progress

# The block every stream moves in: few enough per GiB that the per-block work in Python (queue,
# hashing, tar following) is small, and a prefetch of a few blocks holds 1 MiB at most. Files are
# written in smaller pieces (WRITE_PIECE).
CHUNK = 256 << 10

# What one write() hands the kernel. Linux (6.x, ext4 among others) caches a write of n bytes in a
# page-cache folio of up to n bytes. Folios of up to 32 KiB come from per-CPU free lists; larger
# ones need the page allocator proper, and on a 2-core host writing 1 GiB in 256 KiB or 1 MiB
# writes cost 0.2 to 2.4 s of system time, varying run to run, against a steady 0.35 s in
# 32 KiB writes (the Docker CLI's io.Copy writes 32 KiB too). In a save from the engine the
# difference was 2 to 3 s of CPU per GiB against 1 to 1.2 s, on cores the engine needs.
WRITE_PIECE = 32 << 10


def read_chunks(reader, size: int = CHUNK) -> Iterator[bytes]:
    """Yield blocks of up to `size` bytes from a file-like reader until EOF."""
    while True:
        block = reader.read(size)
        if not block:
            return
        yield block


def write_in_pieces(handle, data) -> None:
    """Write `data` to a binary file WRITE_PIECE bytes at a time (see WRITE_PIECE)."""
    if len(data) <= WRITE_PIECE:
        handle.write(data)
        return
    view = memoryview(data)
    for start in range(0, len(view), WRITE_PIECE):
        handle.write(view[start:start + WRITE_PIECE])


class PiecewiseFile:
    """A binary file opened for writing whose write() goes to the kernel WRITE_PIECE bytes at a time."""

    def __init__(self, handle):
        self._handle = handle

    def write(self, data) -> int:
        write_in_pieces(self._handle, data)
        return len(data)

    def __getattr__(self, name):
        return getattr(self._handle, name)


_DONE = object()


# Blocks a prefetch holds ahead: 1 MiB. 4 MiB (16 blocks) helped zstd saves in an A/B but, in a
# benchmark run, saves without compression were slower: a block no longer stays in the cache between
# the copy that reads it and the one that writes it.
PREFETCH_DEPTH = 4


def prefetch(iterable: Iterable, depth: int = PREFETCH_DEPTH) -> Iterator:
    """Iterate `iterable` in a background thread, `depth` items ahead.

    Socket reads, zlib/zstd and hashlib release the GIL, so reading, compressing and writing
    overlap on separate cores. An exception in the producer is raised in the consumer.
    Closing the returned generator stops the producer. Blocks are counted by the progress meter
    of a save step running in this thread, if any (progress.TAR).
    """
    meter = progress.active(progress.TAR)  # looked up once: without a meter, no cost per block
    items = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry):
        while not stop.is_set():
            try:
                items.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        try:
            for item in iterable:
                if not put((item, None)):
                    return
            put((_DONE, None))
        except BaseException as exc:  # handed to the consumer
            put((_DONE, exc))

    worker = threading.Thread(target=produce, name="airgap-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item, error = items.get()
            if error is not None:
                raise error
            if item is _DONE:
                return
            if meter is not None:
                meter.add(len(item))
            yield item
    finally:
        stop.set()
        worker.join(timeout=5)
