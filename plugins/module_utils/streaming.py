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

# The block every stream moves in. 256 KiB stays in a core's cache between the copy that reads
# it and the one that writes it: with 1 MiB blocks, writing 1 GiB into a file cost 2.7 s of CPU
# instead of 0.8 s on a 2-core host (bench/profile_save.py), CPU that the engine then lacks.
CHUNK = 256 << 10


def read_chunks(reader, size: int = CHUNK) -> Iterator[bytes]:
    """Yield blocks of up to `size` bytes from a file-like reader until EOF."""
    while True:
        block = reader.read(size)
        if not block:
            return
        yield block


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
