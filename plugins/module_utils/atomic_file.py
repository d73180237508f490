# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Files written atomically: under a temporary name beside the target, locked while written, and
renamed into place only when complete; what killed writers leave behind is removed by the next."""

from __future__ import annotations

import fcntl
import os
import re
import stat as stat_module
import tempfile
from typing import IO, Any, Callable

from ansible_collections.airgap.docker.plugins.module_utils.direct_file import DirectFile
from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError, os_error
from ansible_collections.airgap.docker.plugins.module_utils.streaming import PiecewiseFile

PARTIAL_SUFFIX = ".partial"

# The random part tempfile puts in a name: letters, digits and "_", never a dot, so that the partial
# files of `a` are told apart from those of `a.x` (".a.x.<random>.partial").
_RANDOM_PART = re.compile(r"[A-Za-z0-9_]+")

PRIVATE_MODE = 0o600


class AtomicFile:
    """A file written under a temporary name in the target's directory and renamed into
    place only by commit(): a failed or interrupted write never touches the old file.

    The temporary file is flock()ed for as long as this object may still rename it. A writer
    killed by a signal leaves it behind, but the kernel drops the lock with the process; the next
    AtomicFile for the same target removes the temporary files it can lock (their writer is dead)
    and keeps those it cannot (a live writer is still working on them).
    """

    def __init__(self, path: str, mode: int | None = None, direct: bool = False):
        self.path = path
        self.directory = os.path.dirname(os.path.abspath(path)) or "."
        remove_dead_partials(path)
        try:
            fd, self.temp_path = tempfile.mkstemp(prefix=partial_prefix(path), suffix=PARTIAL_SUFFIX, dir=self.directory)
        except OSError as exc:
            raise os_error(exc, self.directory, "creating a file in")
        # direct: a large file written in one stream, past the page cache (direct_file); not for a
        # file flushed as it grows for readers of the temporary file (peer_fetch).
        self.file = DirectFile(fd) if direct else PiecewiseFile(os.fdopen(fd, "wb"))
        self._written_back = 0
        # A descriptor of its own holds the lock: the file object is closed by sync(), long before
        # commit() renames the file, and the lock must last until then.
        self._lock_fd = os.dup(fd)
        _try_lock(self._lock_fd)
        os.chmod(self.temp_path, mode if mode is not None else _default_mode(path))

    def sync(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()

    def start_writeback(self, end: int) -> None:
        """Have the kernel start writing the bytes before `end` to disk now, without waiting.

        A streamed archive calls it as it grows, so that the disk works while the stream is
        still read and the fsync before the rename finds little left to write (it took 0.3 to
        0.5 s per GiB at the end of a save). POSIX_FADV_DONTNEED starts the writeback of the
        dirty pages of the range; the pages stay cached, as only clean ones would be dropped.
        """
        if getattr(self.file, "bypasses_cache", False) or end <= self._written_back or not hasattr(os, "posix_fadvise"):
            return  # written past the page cache: no cached pages to write back
        self.file.flush()
        try:
            os.posix_fadvise(self.file.fileno(), self._written_back, end - self._written_back, os.POSIX_FADV_DONTNEED)
        except OSError:
            pass  # an advice the file system does not take: the fsync writes it all
        self._written_back = end

    def temp_stat(self) -> os.stat_result:
        """fstat of the temporary file, from the descriptor held until commit or abort (never from a path)."""
        return os.fstat(self._lock_fd)

    def open_temp(self) -> IO[bytes]:
        """The temporary file opened for reading, after something else (a file transfer) wrote it by
        its name: refused when that name no longer leads to the file this object created and locks."""
        try:
            fd = os.open(self.temp_path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            raise os_error(exc, self.temp_path, "opening")
        ours, found = os.fstat(self._lock_fd), os.fstat(fd)
        if (ours.st_dev, ours.st_ino) != (found.st_dev, found.st_ino):
            os.close(fd)
            raise ArchiveError("%s was replaced by another file while it was written; nothing was kept." % self.temp_path)
        return os.fdopen(fd, "rb")

    def commit(self) -> None:
        """fsync, then rename over the target; call sync() first if already synced is fine."""
        if not self.file.closed:
            self.sync()
        os.rename(self.temp_path, self.path)
        self.temp_path = None
        self._unlock()

    def abort(self) -> None:
        """Remove the temporary file; the target is untouched. Safe to call more than once."""
        if self.temp_path is None:
            return
        try:
            # A DirectFile drops what it has not written yet; a buffered file may flush its
            # buffered bytes and fail again on a full disk.
            getattr(self.file, "discard", self.file.close)()
        except OSError:
            pass
        try:
            os.unlink(self.temp_path)
        except OSError:
            pass
        self.temp_path = None
        self._unlock()

    def _unlock(self):
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def partial_prefix(path: str) -> str:
    return ".%s." % os.path.basename(path)


def _try_lock(fd):
    """Take the lock that tells later runs this writer is alive. Where the file system has no
    locks, later runs cannot lock it either, and so keep the file: never removed while written."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        pass


def partial_files(path: str) -> tuple[str, list[str]]:
    """Names of the temporary files of AtomicFile(path) in its directory, live or dead."""
    directory = os.path.dirname(os.path.abspath(path)) or "."
    prefix = partial_prefix(path)
    try:
        names = os.listdir(directory)
    except OSError:
        return directory, []
    found = [n for n in names if n.startswith(prefix) and n.endswith(PARTIAL_SUFFIX)
             and _RANDOM_PART.fullmatch(n[len(prefix):-len(PARTIAL_SUFFIX)])]
    return directory, sorted(found)


def live_partial(path: str) -> int | None:
    """A read-only descriptor of the temporary file a live AtomicFile(path) is writing now (its
    lock is held), or None. Another process may read what has been written so far, as it grows."""
    directory, names = partial_files(path)
    for name in reversed(names):
        try:
            fd = os.open(os.path.join(directory, name), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            continue
        if stat_module.S_ISREG(os.fstat(fd).st_mode):  # not a FIFO or device planted under the name
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                return fd  # locked: its writer is alive
        os.close(fd)  # also drops the shared lock this probe took on a dead writer's file
    return None


def remove_dead_partials(path: str) -> list[str]:
    """Remove the temporary files that writers of `path` left behind when they were killed.

    A file is removed only when its lock can be taken, which no live writer allows; errors are
    ignored, since a leftover costs disk space and nothing else. Returns the names removed.
    """
    directory, names = partial_files(path)
    removed = []
    for name in names:
        if _remove_if_unlocked(os.path.join(directory, name)):
            removed.append(name)
    return removed


def _remove_if_unlocked(partial):
    try:
        seen = os.lstat(partial)
    except OSError:
        return False
    if not stat_module.S_ISREG(seen.st_mode):
        return False  # not something AtomicFile makes: a symbolic link, a FIFO or a device is left alone
    fd = _open_to_probe(partial)
    if fd is None:
        return False
    try:
        found = os.fstat(fd)
        if (found.st_dev, found.st_ino) != (seen.st_dev, seen.st_ino):
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # held by a live writer, or no locks here: keep it
        # Still the file that was locked (not removed and replaced by another writer meanwhile)?
        now = os.lstat(partial)
        if (now.st_dev, now.st_ino) != (found.st_dev, found.st_ino):
            return False
        os.unlink(partial)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _open_to_probe(partial):
    """A descriptor to lock the file through: read-write where allowed (an exclusive lock over NFS
    needs it), else read-only. Never follows a link, never blocks."""
    flags = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    for access in (os.O_RDWR, os.O_RDONLY):
        try:
            return os.open(partial, access | flags)
        except OSError:
            continue
    return None


def _default_mode(path):
    """Keep an existing file's mode; a new file gets 0666 less the umask, as open() would."""
    mode = _existing_mode(path, None)
    if mode is None:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    return mode


def _existing_mode(path, new):
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        return new


def fsync_directory(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes_atomically(path: str, data: bytes, mode: int | None = None) -> None:
    """Write `data` to path atomically. `mode` None keeps an existing file's mode and makes a new
    file 0600: what this collection writes this way (sidecars, manifests, memos) may record a
    container's environment, and what nobody chose to share is not shared."""
    if mode is None:
        mode = _existing_mode(path, PRIVATE_MODE)
    target = AtomicFile(path, mode=mode)
    try:
        target.file.write(data)
        target.commit()
    except BaseException:
        target.abort()
        raise


def place_checked_copy(path: str, fill: Callable[[str], None], check: Callable[[IO[bytes]], Any],
                       mode: int = PRIVATE_MODE) -> tuple[Any, os.stat_result]:
    """Put at `path` a file that something else writes by name (a connection's file transfer), once checked.

    fill(temp_path) writes an AtomicFile's temporary file (a copy killed half-way is removed by the
    next one); the file is then given `mode` and check(handle) reads it through a descriptor of that
    very file (a name swapped meanwhile is refused) and raises when it is not what was expected.
    Only then is it synced and renamed into place, and the directory synced. Returns (what check
    returned, fstat of the file in place); on any failure the target is left as it was.
    """
    target = AtomicFile(path, mode=mode)
    try:
        target.file.close()
        fill(target.temp_path)
        with target.open_temp() as handle:
            os.fchmod(handle.fileno(), mode)  # whatever mode the transfer gave it
            checked = check(handle)
            os.fsync(handle.fileno())
            target.commit()
            fsync_directory(os.path.dirname(os.path.abspath(path)))
            return checked, os.fstat(handle.fileno())
    except BaseException:
        target.abort()
        raise
