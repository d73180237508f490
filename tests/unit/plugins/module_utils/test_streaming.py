# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import io
import itertools
import threading
import time

import pytest

from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError
from ansible_collections.airgap.docker.plugins.module_utils.streaming import WRITE_PIECE, PiecewiseFile, prefetch, read_chunks, write_in_pieces


def prefetch_threads():
    return [t for t in threading.enumerate() if t.name == "airgap-prefetch" and t.is_alive()]


def wait_until(condition, timeout=3.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_read_chunks_sizes():
    assert list(read_chunks(io.BytesIO(b"abcdefg"), 3)) == [b"abc", b"def", b"g"]
    assert list(read_chunks(io.BytesIO(b""), 3)) == []


class RecordingFile(io.BytesIO):
    def __init__(self):
        super().__init__()
        self.sizes = []

    def write(self, data):
        self.sizes.append(len(data))
        return super().write(data)


def test_large_writes_reach_the_file_in_pieces_in_order():
    data = bytes(range(256)) * (3 * WRITE_PIECE // 256) + b"tail"
    handle = RecordingFile()
    write_in_pieces(handle, data)
    assert handle.sizes == [WRITE_PIECE, WRITE_PIECE, WRITE_PIECE, 4]
    assert handle.getvalue() == data


@pytest.mark.parametrize("size", [0, 1, WRITE_PIECE])
def test_small_writes_reach_the_file_whole(size):
    handle = RecordingFile()
    write_in_pieces(handle, memoryview(b"z" * size))
    assert handle.sizes == [size]
    assert handle.getvalue() == b"z" * size


def test_a_piecewise_file_is_the_file_it_wraps_but_for_write():
    handle = RecordingFile()
    wrapped = PiecewiseFile(handle)
    assert wrapped.write(bytearray(WRITE_PIECE + 1)) == WRITE_PIECE + 1
    assert handle.sizes == [WRITE_PIECE, 1]
    assert wrapped.tell() == WRITE_PIECE + 1
    wrapped.close()
    assert wrapped.closed and handle.closed


# prefetch -----------------------------------------------------------------------------------


def test_prefetch_yields_everything_in_order():
    assert list(prefetch(iter(range(1000)), depth=3)) == list(range(1000))
    assert list(prefetch([])) == []
    assert wait_until(lambda: not prefetch_threads())


def test_prefetch_runs_the_producer_in_another_thread():
    threads = set()

    def produce():
        for i in range(5):
            threads.add(threading.get_ident())
            yield i

    assert list(prefetch(produce())) == [0, 1, 2, 3, 4]
    assert threads and threading.get_ident() not in threads


def test_prefetch_propagates_producer_exception():
    class Boom(Exception):
        pass

    def produce():
        yield b"a"
        yield b"b"
        raise Boom("engine stream broke")

    got = []
    with pytest.raises(Boom, match="engine stream broke"):
        got.extend(prefetch(produce()))
    assert got == [b"a", b"b"]  # everything before the failure is delivered first
    assert wait_until(lambda: not prefetch_threads())


def test_prefetch_propagates_our_errors():
    def produce():  # a generator that fails before its first item
        yield from ()
        raise ArchiveError("The gzip stream is truncated.")

    with pytest.raises(ArchiveError, match="truncated"):
        list(prefetch(produce()))


def test_prefetch_stays_bounded_ahead():
    produced = itertools.count()
    taken = []

    def produce():
        while True:
            taken.append(next(produced))
            yield taken[-1]

    generator = prefetch(produce(), depth=2)
    assert next(generator) == 0
    time.sleep(0.3)
    # one delivered, two queued, one held by the blocked producer
    assert len(taken) <= 1 + 2 + 1
    generator.close()


def counting(produced):
    """0, 1, 2, ... without end, each noted in `produced` when it is taken from the source."""
    for i in itertools.count():
        produced.append(i)
        yield i


def test_prefetch_stops_producer_when_consumer_closes():
    produced = []
    generator = prefetch(counting(produced), depth=2)
    assert [next(generator) for step in range(3)] == [0, 1, 2]
    started = time.monotonic()
    generator.close()
    assert time.monotonic() - started < 2  # no 5 s join timeout
    assert not prefetch_threads()
    count = len(produced)
    time.sleep(0.3)
    assert len(produced) == count  # the producer no longer pulls from the source


def test_prefetch_stops_when_consumer_breaks_out():
    produced = []
    for item in prefetch(counting(produced), depth=1):
        if item == 5:
            break
    assert wait_until(lambda: not prefetch_threads())
    count = len(produced)
    time.sleep(0.2)
    assert len(produced) == count


def test_prefetch_consumer_error_stops_producer():
    def produce():
        yield from itertools.count()

    with pytest.raises(RuntimeError):
        for item in prefetch(produce()):
            if item == 3:
                raise RuntimeError("consumer failed")
    assert wait_until(lambda: not prefetch_threads())
