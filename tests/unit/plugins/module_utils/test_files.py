# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import contextlib
import errno
import gzip
import hashlib
import io
import itertools
import os
import signal
import stat
import subprocess
import sys
import threading
import time

import pytest

from ansible_collections.airgap.docker.plugins.module_utils import compression, files
from ansible_collections.airgap.docker.plugins.module_utils.errors import (
    AirgapError,
    ArchiveError,
    SpaceError,
)
from ansible_collections.airgap.docker.plugins.module_utils.files import (
    AtomicFile,
    HashingReader,
    HashingWriter,
    check_free_space,
    fsync_directory,
    human_size,
    open_for_reading,
    os_error,
    prefetch,
    read_chunks,
    write_bytes_atomically,
)


def leftovers(directory):
    return sorted(name for name in os.listdir(directory) if name.endswith(".partial"))


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def prefetch_threads():
    return [t for t in threading.enumerate() if t.name == "airgap-prefetch" and t.is_alive()]


def wait_until(condition, timeout=3.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


# human_size / free space --------------------------------------------------------------------


@pytest.mark.parametrize("num, text", [
    (0, "0 B"), (1, "1 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1536, "1.5 KiB"),
    (5 << 20, "5.0 MiB"), (int(2.25 * (1 << 30)), "2.2 GiB"), (1 << 40, "1.0 TiB"), (5 << 50, "5120.0 TiB"),
])
def test_human_size(num, text):
    assert human_size(num) == text


def test_free_bytes_of_real_directory(tmp_path):
    assert files.free_bytes(str(tmp_path)) > 0


def test_check_free_space_enough(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "free_bytes", lambda directory: 10 << 20)
    assert check_free_space(str(tmp_path), 10 << 20, "the archive") == 10 << 20
    assert check_free_space(str(tmp_path), 0, "the archive") == 10 << 20


def test_check_free_space_not_enough(tmp_path, monkeypatch):
    asked = []
    monkeypatch.setattr(files, "free_bytes", lambda directory: asked.append(directory) or 1536)
    with pytest.raises(SpaceError) as info:
        check_free_space(str(tmp_path), 5 << 20, "the archive")
    message = info.value.msg
    assert str(tmp_path) in message
    assert "the archive" in message
    assert "5.0 MiB needed" in message
    assert "1.5 KiB free" in message
    assert info.value.details == {"needed": 5 << 20, "free": 1536}
    assert asked == [str(tmp_path)]


def test_check_free_space_real_filesystem(tmp_path):
    free = check_free_space(str(tmp_path), 1, "a test")
    assert free > 0
    with pytest.raises(SpaceError, match="needed"):
        check_free_space(str(tmp_path), 1 << 62, "a test")


# os_error / open_for_reading ----------------------------------------------------------------


@pytest.mark.parametrize("code, kind, text", [
    (errno.ENOSPC, SpaceError, "No space left"),
    (errno.EACCES, AirgapError, "Permission denied"),
    (errno.EPERM, AirgapError, "Permission denied"),
    (errno.ENOENT, ArchiveError, "does not exist"),
    (errno.EIO, AirgapError, "Input/output error"),
])
def test_os_error(code, kind, text):
    error = os_error(OSError(code, os.strerror(code)), "/srv/x.tar", "writing")
    assert error.__class__ is kind
    assert text in error.msg
    assert "/srv/x.tar" in error.msg


def test_os_error_without_strerror():
    error = os_error(OSError(errno.EIO, None), "/p", "reading")
    assert "/p" in error.msg


def test_check_writable_directory(tmp_path, monkeypatch):
    files.check_writable_directory(str(tmp_path / "new.tar"))  # fine: exists and writable
    with pytest.raises(ArchiveError) as info:
        files.check_writable_directory(str(tmp_path / "missing" / "new.tar"))
    assert str(tmp_path / "missing") in info.value.msg and "new.tar" in info.value.msg
    monkeypatch.setattr(files.os, "access", lambda path, mode: False)
    with pytest.raises(AirgapError, match="Permission denied") as info:
        files.check_writable_directory(str(tmp_path / "new.tar"))
    assert str(tmp_path) in info.value.msg


def test_open_for_reading(tmp_path):
    path = tmp_path / "a.tar"
    path.write_bytes(b"abc")
    with open_for_reading(str(path)) as handle:
        assert handle.read() == b"abc"
    with pytest.raises(ArchiveError, match="does not exist"):
        open_for_reading(str(tmp_path / "missing.tar"))
    with pytest.raises(ArchiveError, match="is a directory"):
        open_for_reading(str(tmp_path))


# hashing wrappers ---------------------------------------------------------------------------


def test_hashing_reader_read():
    data = os.urandom(3 * files.CHUNK + 17)
    reader = HashingReader(io.BytesIO(data))
    assert reader.readable()
    blocks = list(read_chunks(reader))
    assert b"".join(blocks) == data
    assert [len(b) for b in blocks] == [files.CHUNK] * 3 + [17]
    assert reader.count == len(data)
    assert reader.sha256.hexdigest() == hashlib.sha256(data).hexdigest()


def test_hashing_reader_readinto():
    data = b"0123456789" * 100
    reader = HashingReader(io.BytesIO(data))
    buffer = bytearray(300)
    got = []
    while True:
        size = reader.readinto(buffer)
        if not size:
            break
        got.append(bytes(buffer[:size]))
    assert b"".join(got) == data
    assert reader.count == len(data)
    assert reader.sha256.hexdigest() == hashlib.sha256(data).hexdigest()


def test_hashing_reader_feeds_a_decompressor():
    data = os.urandom(50_000) * 3
    packed = gzip.compress(data)
    reader = HashingReader(io.BytesIO(packed))
    assert b"".join(read_chunks(compression.open_reader(reader, compression.GZIP))) == data
    assert reader.count == len(packed)
    assert reader.sha256.hexdigest() == hashlib.sha256(packed).hexdigest()


def test_hashing_writer():
    sink = io.BytesIO()
    writer = HashingWriter(sink)
    assert writer.write(b"abc") == 3
    assert writer.write(memoryview(b"defg")) == 4
    writer.flush()
    assert sink.getvalue() == b"abcdefg"
    assert writer.count == 7
    assert writer.sha256.hexdigest() == hashlib.sha256(b"abcdefg").hexdigest()


def test_read_chunks_sizes():
    assert list(read_chunks(io.BytesIO(b"abcdefg"), 3)) == [b"abc", b"def", b"g"]
    assert list(read_chunks(io.BytesIO(b""), 3)) == []


# AtomicFile ---------------------------------------------------------------------------------


def test_atomic_commit_new_file(tmp_path, umask_022):
    path = str(tmp_path / "new.tar")
    target = AtomicFile(path)
    assert os.path.dirname(target.temp_path) == str(tmp_path)
    assert os.path.basename(target.temp_path).startswith(".new.tar.")
    target.file.write(b"content")
    assert not os.path.exists(path)  # nothing at the final name before commit
    target.commit()
    with open(path, "rb") as handle:
        assert handle.read() == b"content"
    assert leftovers(tmp_path) == []
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644  # 0666 less the umask


def test_atomic_new_file_mode_follows_umask(tmp_path):
    old = os.umask(0o077)
    try:
        path = str(tmp_path / "private.tar")
        write_bytes_atomically(path, b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_atomic_keeps_mode_of_existing_file(tmp_path, umask_022):
    path = tmp_path / "existing.tar"
    path.write_bytes(b"old")
    os.chmod(path, 0o640)
    target = AtomicFile(str(path))
    target.file.write(b"new")
    target.commit()
    assert path.read_bytes() == b"new"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640


def test_atomic_explicit_mode(tmp_path, umask_022):
    path = tmp_path / "explicit.tar"
    path.write_bytes(b"old")
    os.chmod(path, 0o644)
    target = AtomicFile(str(path), mode=0o600)
    assert stat.S_IMODE(os.stat(target.temp_path).st_mode) == 0o600
    target.file.write(b"new")
    target.commit()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_atomic_abort_leaves_old_file(tmp_path):
    path = tmp_path / "keep.tar"
    path.write_bytes(b"old content")
    before = os.stat(path)
    target = AtomicFile(str(path))
    target.file.write(b"half-written new content")
    target.abort()
    assert path.read_bytes() == b"old content"
    assert os.stat(path).st_ino == before.st_ino
    assert leftovers(tmp_path) == []
    assert sorted(os.listdir(tmp_path)) == ["keep.tar"]


def test_atomic_abort_without_old_file(tmp_path):
    target = AtomicFile(str(tmp_path / "never.tar"))
    target.file.write(b"x")
    target.abort()
    assert os.listdir(tmp_path) == []


def test_atomic_abort_after_sync_and_twice(tmp_path):
    target = AtomicFile(str(tmp_path / "a.tar"))
    target.file.write(b"x")
    target.sync()
    assert target.file.closed
    target.abort()
    target.abort()
    assert os.listdir(tmp_path) == []


def test_atomic_abort_after_commit_is_harmless(tmp_path):
    path = tmp_path / "a.tar"
    target = AtomicFile(str(path))
    target.file.write(b"done")
    target.commit()
    target.abort()
    assert path.read_bytes() == b"done"


def test_atomic_commit_after_sync(tmp_path):
    path = tmp_path / "a.tar"
    target = AtomicFile(str(path))
    target.file.write(b"synced")
    target.sync()
    target.commit()
    assert path.read_bytes() == b"synced"
    assert leftovers(tmp_path) == []


def test_atomic_in_missing_directory(tmp_path):
    with pytest.raises(ArchiveError, match="does not exist"):
        AtomicFile(str(tmp_path / "no" / "such" / "dir.tar"))


def test_atomic_relative_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    target = AtomicFile("rel.tar")
    target.file.write(b"r")
    target.commit()
    assert (tmp_path / "rel.tar").read_bytes() == b"r"


def test_write_bytes_atomically(tmp_path):
    path = tmp_path / "side.json"
    path.write_bytes(b"old")
    write_bytes_atomically(str(path), b"new")
    assert path.read_bytes() == b"new"
    assert leftovers(tmp_path) == []


def test_write_bytes_atomically_failure_keeps_old(tmp_path):
    path = tmp_path / "side.json"
    path.write_bytes(b"old")
    with pytest.raises(TypeError):
        write_bytes_atomically(str(path), "text is not bytes")
    assert path.read_bytes() == b"old"
    assert leftovers(tmp_path) == []


def test_fsync_directory(tmp_path):
    fsync_directory(str(tmp_path))
    with pytest.raises(OSError):
        fsync_directory(str(tmp_path / "missing"))


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


def test_prefetch_stops_producer_when_consumer_closes():
    produced = []

    def produce():
        for i in itertools.count():
            produced.append(i)
            yield i

    generator = prefetch(produce(), depth=2)
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

    def produce():
        for i in itertools.count():
            produced.append(i)
            yield i

    for item in prefetch(produce(), depth=1):
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


def test_abort_removes_the_temp_file_even_when_closing_fails(tmp_path):
    target = AtomicFile(str(tmp_path / "full.tar"))
    target.file.write(b"x" * 100)  # stays in the write buffer

    class FullDisk:
        closed = False

        def close(self):
            raise OSError(28, "No space left on device")

    target.file = FullDisk()
    temp = target.temp_path
    target.abort()
    assert not os.path.exists(temp)
    assert os.listdir(tmp_path) == []


# write_bytes_atomically modes ----------------------------------------------------------------


def test_write_bytes_atomically_makes_new_files_private(tmp_path, umask_022):
    path = tmp_path / "new.json"
    write_bytes_atomically(str(path), b"{}")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_write_bytes_atomically_keeps_a_chosen_mode_or_takes_the_given_one(tmp_path, umask_022):
    path = tmp_path / "shared.json"
    path.write_bytes(b"old")
    os.chmod(path, 0o640)
    write_bytes_atomically(str(path), b"new")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    write_bytes_atomically(str(path), b"newer", mode=0o600)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 and path.read_bytes() == b"newer"


# hash_open_file ------------------------------------------------------------------------------


def test_hash_open_file_returns_the_stat_of_an_unchanged_file(tmp_path):
    path = tmp_path / "a.tar"
    path.write_bytes(b"x" * (files.CHUNK + 5))
    with open(path, "rb") as handle:
        handle.read(10)  # hashed from the start whatever was read before
        digest, size, found = files.hash_open_file(handle)
    assert (digest, size) == (hashlib.sha256(b"x" * (files.CHUNK + 5)).hexdigest(), files.CHUNK + 5)
    assert files.stat_identity(found) == files.stat_identity(os.stat(path))


class GrowsWhileRead(io.FileIO):
    """A file that another writer appends to (or rewrites) while it is being hashed."""

    def __init__(self, path, change):
        super().__init__(path, "rb")
        self.change = change

    def read(self, size=-1):
        data = super().read(size)
        if self.change:
            self.change()
            self.change = None
        return data


@pytest.mark.parametrize("how", ["append", "rewrite in place"])
def test_hash_open_file_vouches_for_nothing_when_the_file_changes(tmp_path, how):
    path = tmp_path / "a.tar"
    path.write_bytes(b"a" * (3 * files.CHUNK))

    def change():
        time.sleep(0.01)  # a later timestamp than the file had
        with open(path, "r+b") as writer:
            if how == "append":
                writer.seek(0, os.SEEK_END)
            writer.write(b"b" * 100)

    with GrowsWhileRead(str(path), change) as handle:
        _digest, _size, found = files.hash_open_file(handle)
    assert found is None


def test_file_sha256(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    assert files.file_sha256(str(path)) == (hashlib.sha256(b"abc").hexdigest(), 3)


# Leftover partial files: locks, not ages ------------------------------------------------------

COLLECTION_PARENT = os.path.abspath(os.path.join(os.path.dirname(files.__file__), *[os.pardir] * 5))
WRITER = """
import sys, time
sys.path.insert(0, %r)
from ansible_collections.airgap.docker.plugins.module_utils.files import AtomicFile
target = AtomicFile(sys.argv[1])
target.file.write(b"half an archive" * 1000)
target.file.flush()
if sys.argv[2] == "synced":
    target.sync()  # closed, but not renamed yet: still its writer's
print(target.temp_path, flush=True)
time.sleep(120)
""" % COLLECTION_PARENT


@contextlib.contextmanager
def writer_process(path, state="writing"):
    """A live writer of `path` in another process; yields (process, its temporary file)."""
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(path), state], stdout=subprocess.PIPE, text=True)
    try:
        temp = child.stdout.readline().strip()
        assert temp, "the writer did not start"
        yield child, temp
    finally:
        child.kill()
        child.wait()


@pytest.mark.parametrize("state", ["writing", "synced"])
def test_a_live_writers_partial_file_is_kept(tmp_path, state):
    path = tmp_path / "app.tar"
    path.write_bytes(b"previous archive")
    with writer_process(path, state) as (_child, temp):
        assert files.remove_dead_partials(str(path)) == []
        target = AtomicFile(str(path))
        target.file.write(b"other")
        target.abort()
        assert os.path.exists(temp)
    assert path.read_bytes() == b"previous archive"


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGHUP])
def test_a_killed_writers_partial_file_is_removed_by_the_next_writer(tmp_path, sig):
    path = tmp_path / "app.tar"
    path.write_bytes(b"previous archive")
    with writer_process(path) as (child, temp):
        child.send_signal(sig)
        assert child.wait(timeout=10) == -sig
        assert os.path.getsize(temp) > 0  # what the issue saw: a leftover of archive size
        target = AtomicFile(str(path))
        assert not os.path.exists(temp)
        assert path.read_bytes() == b"previous archive"  # never lost on the way
        target.file.write(b"new archive")
        target.commit()
    assert path.read_bytes() == b"new archive"
    assert leftovers(tmp_path) == []


def test_only_the_partial_files_of_the_same_target_are_removed(tmp_path):
    path = tmp_path / "a"
    dead = [tmp_path / ".a.abc123_x.partial", tmp_path / ".a.tmpq9z8y7x6.partial"]
    others = [tmp_path / ".a.x.abcdefgh.partial",  # of the target a.x
              tmp_path / ".ab.abcdefgh.partial",   # of the target ab
              tmp_path / "a.abcdefgh.partial",     # not hidden: push_archive's kind, not ours
              tmp_path / ".a..partial"]
    for name in dead + others:
        name.write_bytes(b"x")
    os.symlink(tmp_path / "a", tmp_path / ".a.link1234.partial")
    os.mkfifo(tmp_path / ".a.fifo1234.partial")
    assert sorted(files.remove_dead_partials(str(path))) == sorted(p.name for p in dead)
    assert sorted(os.listdir(tmp_path)) == sorted([p.name for p in others] + [".a.link1234.partial", ".a.fifo1234.partial"])


def test_without_locks_on_the_file_system_nothing_is_removed(tmp_path, monkeypatch):
    path = tmp_path / "a.tar"
    leftover = tmp_path / ".a.tar.abcdefgh.partial"
    leftover.write_bytes(b"x")

    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(files.fcntl, "flock", no_locks)
    target = AtomicFile(str(path))  # its own lock fails too, quietly
    target.file.write(b"new")
    target.commit()
    assert leftover.exists() and path.read_bytes() == b"new"


def test_two_writers_in_one_process_do_not_remove_each_other(tmp_path):
    path = tmp_path / "a.tar"
    first = AtomicFile(str(path))
    first.file.write(b"first")
    first.sync()
    second = AtomicFile(str(path))
    assert os.path.exists(first.temp_path)
    second.abort()
    first.commit()
    assert path.read_bytes() == b"first"


def test_open_temp_refuses_a_temporary_file_replaced_by_another(tmp_path):
    target = AtomicFile(str(tmp_path / "a.tar"))
    target.file.close()
    with target.open_temp() as handle:
        assert handle.read() == b""
    impostor = tmp_path / "impostor"
    impostor.write_bytes(b"evil")
    os.rename(impostor, target.temp_path)
    with pytest.raises(ArchiveError, match="was replaced by another file"):
        target.open_temp()
    target.abort()
    assert os.listdir(tmp_path) == []


# DirectoryLock --------------------------------------------------------------------------------

HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
fcntl.flock(fd, fcntl.LOCK_SH if sys.argv[2] == "shared" else fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(float(sys.argv[3]))
"""


@contextlib.contextmanager
def lock_holder(directory, kind="exclusive", seconds=120):
    child = subprocess.Popen([sys.executable, "-c", HOLDER, str(directory), kind, str(seconds)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "locked"
        yield child
    finally:
        child.kill()
        child.wait()


def test_a_second_writer_fails_with_a_sentence_after_the_timeout(tmp_path):
    (tmp_path / "manifest.json").write_bytes(b"kept")
    with lock_holder(tmp_path):
        started = time.monotonic()
        with pytest.raises(files.LockTimeout) as info, files.DirectoryLock(str(tmp_path), 0.5, what="the bundle"):
            (tmp_path / "manifest.json").write_bytes(b"overwritten")
        assert time.monotonic() - started >= 0.5
    assert info.value.msg.startswith("Another run is using the bundle %s" % tmp_path)
    assert "after 0.5 second(s); nothing was changed, run again once it is done." in info.value.msg
    assert (tmp_path / "manifest.json").read_bytes() == b"kept"


def test_a_second_writer_waits_for_the_first(tmp_path):
    with lock_holder(tmp_path, seconds=1):
        started = time.monotonic()
        with files.DirectoryLock(str(tmp_path), 30):
            waited = time.monotonic() - started
    assert 0.5 < waited < 25


def test_a_killed_writer_holds_no_lock(tmp_path):
    with lock_holder(tmp_path) as child:
        child.send_signal(signal.SIGKILL)
        child.wait()
        with files.DirectoryLock(str(tmp_path), 0):
            pass


def test_readers_share_the_lock_and_wait_for_a_writer(tmp_path):
    with lock_holder(tmp_path, "shared"):
        with files.DirectoryLock(str(tmp_path), 0, shared=True):
            pass
        with pytest.raises(files.LockTimeout, match="Another run is using"), files.DirectoryLock(str(tmp_path), 0):
            pass
    with lock_holder(tmp_path), pytest.raises(files.LockTimeout, match="Another run is writing"), files.DirectoryLock(str(tmp_path), 0, shared=True):
        pass


def test_a_missing_directory_needs_no_lock(tmp_path):
    with files.DirectoryLock(str(tmp_path / "not-yet"), 0) as lock:
        assert lock.fd is None
