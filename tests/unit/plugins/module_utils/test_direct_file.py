"""direct_file: bytes written past the page cache arrive whole and in order, whatever the sizes of
the writes, after a flush mid-stream, and on a file system that refuses O_DIRECT; a failed write
is raised in the writing thread and never leaves it waiting."""

from __future__ import annotations

import errno
import fcntl
import os
import threading
import time

import pytest

from ansible_collections.airgap.docker.plugins.module_utils import direct_file
from ansible_collections.airgap.docker.plugins.module_utils.atomic_file import AtomicFile
from ansible_collections.airgap.docker.plugins.module_utils.direct_file import BUFFER, DirectFile

# Repeating, but with no period that divides BUFFER: a byte out of place shows.
PATTERN = bytes(range(251)) * 700


def payload(size):
    return (PATTERN * (size // len(PATTERN) + 1))[:size]


def open_direct(path):
    return DirectFile(os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def write_in(handle, data, piece):
    for start in range(0, len(data), piece):
        handle.write(data[start:start + piece])


def within(seconds, action):
    """Run action in a thread; fail (instead of hanging the suite) when it has not ended in time.
    Returns what it raised, or None."""
    raised = []

    def run():
        try:
            action()
        except BaseException as exc:  # handed to the test
            raised.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "still waiting after %d s" % seconds
    return raised[0] if raised else None


@pytest.mark.parametrize("size", [0, 1, BUFFER - 1, BUFFER, BUFFER + 1, 3 * BUFFER + 12345])
@pytest.mark.parametrize("piece", [4096, 256 << 10, 5 << 20])
def test_every_byte_arrives_in_order(tmp_path, size, piece):
    data = payload(size)
    with open_direct(tmp_path / "f") as handle:
        write_in(handle, data, piece)
    assert (tmp_path / "f").read_bytes() == data


def test_full_buffers_go_past_the_page_cache_and_the_tail_through_it(tmp_path):
    handle = open_direct(tmp_path / "f")
    if not handle.bypasses_cache:
        pytest.skip("this file system does not take O_DIRECT")
    assert fcntl.fcntl(handle.fileno(), fcntl.F_GETFL) & os.O_DIRECT
    handle.write(payload(2 * BUFFER + 10))
    handle.flush()
    # The 10-byte tail is not aligned: it and what follows go through the page cache.
    assert not handle.bypasses_cache and not fcntl.fcntl(handle.fileno(), fcntl.F_GETFL) & os.O_DIRECT
    handle.write(b"after")
    handle.close()
    assert (tmp_path / "f").read_bytes() == payload(2 * BUFFER + 10) + b"after"


def test_a_flush_at_a_buffer_boundary_keeps_the_file_direct(tmp_path):
    handle = open_direct(tmp_path / "f")
    was_direct = handle.bypasses_cache
    handle.write(payload(BUFFER))
    handle.flush()
    assert os.fstat(handle.fileno()).st_size == BUFFER
    assert handle.bypasses_cache == was_direct
    handle.write(b"x")
    handle.close()
    assert (tmp_path / "f").read_bytes() == payload(BUFFER) + b"x"


def test_a_file_system_that_refuses_the_flag_gets_every_byte_through_the_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(direct_file, "_set_direct", lambda fd, on: False)
    data = payload(2 * BUFFER + 7)
    with open_direct(tmp_path / "f") as handle:
        assert not handle.bypasses_cache
        write_in(handle, data, 1 << 20)
    assert (tmp_path / "f").read_bytes() == data


def assert_fallback_keeps_every_byte(tmp_path, monkeypatch, direct_write, size):
    """With the flag taken (even where the file system would not take it) and direct writes done
    by direct_write, `size` bytes arrive whole, and the file has left O_DIRECT by the end."""
    monkeypatch.setattr(direct_file, "_set_direct", lambda fd, on: True)
    monkeypatch.setattr(direct_file, "_write_direct", direct_write)
    data = payload(size)
    with open_direct(tmp_path / "f") as handle:
        write_in(handle, data, 1 << 20)
        handle.flush()
        assert not handle.bypasses_cache
    assert (tmp_path / "f").read_bytes() == data


def test_a_file_system_that_refuses_the_writes_gets_them_again_through_the_cache(tmp_path, monkeypatch):
    refused = []

    def refuse_direct(fd, view):
        refused.append(len(view))
        raise OSError(errno.EINVAL, "Invalid argument")

    assert_fallback_keeps_every_byte(tmp_path, monkeypatch, refuse_direct, 3 * BUFFER + 99)
    assert refused == [BUFFER]  # the first buffer only: after it, every write goes through the cache


def test_after_a_short_write_the_rest_goes_through_the_cache(tmp_path, monkeypatch):
    def half(fd, view):
        return os.write(fd, view[:len(view) // 2])

    assert_fallback_keeps_every_byte(tmp_path, monkeypatch, half, 3 * BUFFER + 5)


def test_a_failed_write_is_raised_to_the_writer_and_nothing_hangs(tmp_path, monkeypatch):
    def disk_full(fd, view):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(direct_file, "_set_direct", lambda fd, on: True)
    monkeypatch.setattr(direct_file, "_write_direct", disk_full)
    handle = open_direct(tmp_path / "f")

    def write_more_than_the_buffers():
        write_in(handle, payload(BUFFER), 64 << 10)
        for _buffer in range(direct_file.BUFFERS + 2):  # the writing thread failed long before the last
            handle.write(payload(BUFFER))
        handle.flush()

    raised = within(30, write_more_than_the_buffers)
    assert isinstance(raised, OSError) and raised.errno == errno.ENOSPC
    assert isinstance(within(30, handle.close), OSError)
    assert handle.closed
    with pytest.raises(OSError):
        os.fstat(handle.fileno())  # the descriptor was closed all the same


def test_an_atomic_file_written_direct_commits_what_was_written(tmp_path):
    path = tmp_path / "archive.tar"
    path.write_bytes(b"old")
    target = AtomicFile(str(path), direct=True)
    data = payload(BUFFER + 4321)
    write_in(target.file, data, 256 << 10)
    direct = target.file.bypasses_cache
    target.start_writeback(BUFFER)  # nothing cached to write back; must not push the tail out early
    assert target.file.bypasses_cache == direct
    if direct:
        assert os.fstat(target.file.fileno()).st_size % BUFFER == 0
    target.file.write(b"end")
    assert path.read_bytes() == b"old"
    target.commit()
    assert path.read_bytes() == data + b"end"
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".partial")]


def test_an_aborted_direct_file_leaves_the_old_one(tmp_path):
    path = tmp_path / "archive.tar"
    path.write_bytes(b"old")
    target = AtomicFile(str(path), direct=True)
    target.file.write(payload(2 * BUFFER + 1))
    target.abort()
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["archive.tar"]


def test_discard_drops_what_is_queued_and_waits_only_for_the_write_in_flight(tmp_path, monkeypatch):
    release, calls = threading.Event(), []

    def slow_disk(fd, view):
        calls.append(len(view))
        release.wait(30)
        return os.write(fd, view)

    monkeypatch.setattr(direct_file, "_set_direct", lambda fd, on: True)
    monkeypatch.setattr(direct_file, "_write_direct", slow_disk)
    handle = open_direct(tmp_path / "f")
    # One buffer in flight, the others queued, and a tail: writing more would wait for a free buffer.
    handle.write(payload((direct_file.BUFFERS - 1) * BUFFER + 10))
    deadline = time.monotonic() + 30
    while not calls and time.monotonic() < deadline:
        time.sleep(0.01)
    assert calls == [BUFFER]  # the first buffer is in flight
    discarding = threading.Thread(target=handle.discard, daemon=True)
    discarding.start()
    discarding.join(0.5)
    assert discarding.is_alive()  # the write in flight is not cut short
    release.set()
    discarding.join(30)
    assert not discarding.is_alive() and handle.closed
    assert calls == [BUFFER]  # the queued buffers were dropped
    assert (tmp_path / "f").stat().st_size == BUFFER  # and the tail never written
    with pytest.raises(ValueError):
        handle.write(b"x")


def test_an_atomic_file_aborted_after_a_failed_write_leaves_the_old_one(tmp_path, monkeypatch):
    def disk_full(fd, view):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(direct_file, "_set_direct", lambda fd, on: True)
    monkeypatch.setattr(direct_file, "_write_direct", disk_full)
    path = tmp_path / "archive.tar"
    path.write_bytes(b"old")
    target = AtomicFile(str(path), direct=True)
    raised = within(30, lambda: write_in(target.file, payload((direct_file.BUFFERS + 2) * BUFFER), 1 << 20))
    assert isinstance(raised, OSError) and raised.errno == errno.ENOSPC
    assert within(30, target.abort) is None
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["archive.tar"]
