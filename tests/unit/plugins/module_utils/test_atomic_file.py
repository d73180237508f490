# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import contextlib
import errno
import os
import signal
import stat
import subprocess
import sys

import pytest

from ansible_collections.airgap.docker.plugins.module_utils import atomic_file, streaming
from ansible_collections.airgap.docker.plugins.module_utils.atomic_file import (
    AtomicFile,
    fsync_directory,
    place_checked_copy,
    write_bytes_atomically,
)
from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError


def leftovers(directory):
    return sorted(name for name in os.listdir(directory) if name.endswith(".partial"))


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


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


@pytest.mark.parametrize("sync_first, abort_after", [(False, True), (True, False)])
def test_atomic_commit_keeps_the_file(tmp_path, sync_first, abort_after):
    """A commit after a sync, and an abort after a commit, leave the committed file and no leftovers."""
    path = tmp_path / "a.tar"
    target = AtomicFile(str(path))
    target.file.write(b"done")
    if sync_first:
        target.sync()
    target.commit()
    if abort_after:
        target.abort()
    assert path.read_bytes() == b"done"
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


# Leftover partial files: locks, not ages ------------------------------------------------------

COLLECTION_PARENT = os.path.abspath(os.path.join(os.path.dirname(atomic_file.__file__), *[os.pardir] * 5))
WRITER = """
import sys, time
sys.path.insert(0, %r)
from ansible_collections.airgap.docker.plugins.module_utils.atomic_file import AtomicFile
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
        assert atomic_file.remove_dead_partials(str(path)) == []
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
    assert sorted(atomic_file.remove_dead_partials(str(path))) == sorted(p.name for p in dead)
    assert sorted(os.listdir(tmp_path)) == sorted([p.name for p in others] + [".a.link1234.partial", ".a.fifo1234.partial"])


def test_without_locks_on_the_file_system_nothing_is_removed(tmp_path, monkeypatch):
    path = tmp_path / "a.tar"
    leftover = tmp_path / ".a.tar.abcdefgh.partial"
    leftover.write_bytes(b"x")

    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(atomic_file.fcntl, "flock", no_locks)
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


# place_checked_copy ---------------------------------------------------------------------------


def copy_of(data):
    def fill(temp_path):
        with open(temp_path, "wb") as handle:
            handle.write(data)
    return fill


def test_a_checked_copy_is_placed_with_the_mode_asked(tmp_path, umask_022):
    path = tmp_path / "a.tar"
    checked, placed = place_checked_copy(str(path), copy_of(b"copied"), lambda handle: handle.read())
    assert checked == b"copied" and path.read_bytes() == b"copied"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert (placed.st_ino, placed.st_size) == (os.stat(path).st_ino, 6)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("failing", ["fill", "check"])
def test_a_copy_that_fails_leaves_the_old_file_and_no_partial(tmp_path, failing):
    path = tmp_path / "a.tar"
    path.write_bytes(b"old")

    def fail(_argument):
        raise ArchiveError("refused")

    fill = fail if failing == "fill" else copy_of(b"new")
    with pytest.raises(ArchiveError, match="refused"):
        place_checked_copy(str(path), fill, fail)
    assert path.read_bytes() == b"old"
    assert leftovers(tmp_path) == []


def test_a_copy_whose_name_was_swapped_is_refused(tmp_path):
    path = tmp_path / "a.tar"

    def swap(temp_path):
        os.unlink(temp_path)
        with open(temp_path, "wb") as handle:
            handle.write(b"planted")

    with pytest.raises(ArchiveError, match="was replaced by another file"):
        place_checked_copy(str(path), swap, lambda handle: pytest.fail("checked the planted file"))
    assert not path.exists()


def test_writeback_is_started_for_each_new_range_only(tmp_path, monkeypatch):
    advised = []
    monkeypatch.setattr(atomic_file.os, "posix_fadvise", lambda fd, offset, length, advice: advised.append((offset, length, advice)),
                        raising=False)
    target = AtomicFile(str(tmp_path / "a.tar"))
    target.file.write(b"x" * 3000)
    target.start_writeback(2048)
    target.start_writeback(1024)  # already asked for
    target.start_writeback(3000)
    assert advised == [(0, 2048, os.POSIX_FADV_DONTNEED), (2048, 952, os.POSIX_FADV_DONTNEED)]
    target.commit()
    assert (tmp_path / "a.tar").read_bytes() == b"x" * 3000


def test_writeback_advice_a_file_system_refuses_changes_nothing(tmp_path, monkeypatch):
    def refuse(*_args):
        raise OSError(errno.ESPIPE, "Illegal seek")

    monkeypatch.setattr(atomic_file.os, "posix_fadvise", refuse, raising=False)
    target = AtomicFile(str(tmp_path / "a.tar"))
    target.file.write(b"y" * 100)
    target.start_writeback(100)
    target.commit()
    assert (tmp_path / "a.tar").read_bytes() == b"y" * 100


def test_an_atomic_file_hands_large_blocks_to_the_kernel_in_pieces(tmp_path, monkeypatch):
    sizes = []

    class Recording:
        def __init__(self, handle):
            self.handle = handle

        def write(self, data):
            sizes.append(len(data))
            return self.handle.write(data)

        def __getattr__(self, name):
            return getattr(self.handle, name)

    real_fdopen = os.fdopen
    monkeypatch.setattr(atomic_file.os, "fdopen", lambda fd, mode: Recording(real_fdopen(fd, mode)))
    data = os.urandom(5 * streaming.WRITE_PIECE // 2)
    target = AtomicFile(str(tmp_path / "a.tar"))
    target.file.write(data)
    target.file.write(b"end")
    target.commit()
    assert sizes == [streaming.WRITE_PIECE, streaming.WRITE_PIECE, streaming.WRITE_PIECE // 2, 3]
    assert (tmp_path / "a.tar").read_bytes() == data + b"end"
