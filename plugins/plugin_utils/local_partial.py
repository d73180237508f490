# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The partial copy a fetch keeps on the controller, beside its destination: `<dest>.<sha256 prefix>.partial`.

Its name says which content it is part of, so a fetch killed half-way (a dropped link, a killed
ansible-playbook) is resumed by the next fetch of the same archive, and one of other content is never
taken for it. It is opened without following a link and only when it is a regular file of ours with
no other name: something planted under the name is refused, never written through, never waited on.
The connection writes it by name; every check and the rename go through the descriptor held here.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import stat as stat_module

from ansible_collections.airgap.docker.plugins.module_utils.atomic_file import PRIVATE_MODE, fsync_directory
from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError, os_error

SUFFIX = ".partial"
CHUNK_SUFFIX = ".chunk"
_FLAGS = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_COPY = 1 << 20


def partial_name(dest: str, sha256: str) -> str:
    return "%s.%s%s" % (dest, sha256[:16], SUFFIX)


def open_regular_file(path: str, flags: int) -> int:
    """A descriptor of `path` opened with `flags`, when it is a regular file owned by this user with
    one name; a link, FIFO, device or another user's file under the name is one sentence."""
    try:
        fd = os.open(path, flags | _FLAGS, PRIVATE_MODE)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO, errno.EISDIR):
            raise ArchiveError("%s is not a regular file (something was put under the name of a partial copy); remove it." % path)
        raise os_error(exc, path, "opening")
    found = os.fstat(fd)
    if not stat_module.S_ISREG(found.st_mode) or found.st_uid != os.geteuid() or found.st_nlink != 1:
        os.close(fd)
        raise ArchiveError("%s is not a regular file of this user with one name (something was put under the name of a "
                           "partial copy); remove it." % path)
    return fd


class LocalPartial:
    """The partial copy of `dest` for content `sha256`, created if need be and locked while held."""

    def __init__(self, dest: str, sha256: str):
        self.dest = dest
        self.path = partial_name(dest, sha256)
        self.fd = open_regular_file(self.path, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            pass  # the bundle's lock already keeps other fetches out; this one is for anything else that looks
        os.fchmod(self.fd, PRIVATE_MODE)

    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def truncate(self, size: int) -> None:
        os.ftruncate(self.fd, size)

    def check_name(self) -> None:
        """Fail when the name no longer leads to the file held here (it was replaced while the connection wrote it)."""
        try:
            now = os.lstat(self.path)
        except OSError as exc:
            raise os_error(exc, self.path, "looking at")
        mine = os.fstat(self.fd)
        if (now.st_dev, now.st_ino) != (mine.st_dev, mine.st_ino):
            raise ArchiveError("%s was replaced by another file while it was written; nothing was kept." % self.path)

    def append(self, chunk_fd: int, length: int) -> None:
        """Copy `length` bytes of an open chunk file to the end of the partial copy."""
        offset = self.size()
        done = 0
        while done < length:
            data = os.pread(chunk_fd, min(_COPY, length - done), done)
            if not data:
                raise ArchiveError("A piece of %s ended after %d of its %d bytes; the partial copy is kept." % (self.dest, done, length))
            written = os.pwrite(self.fd, data, offset + done)
            done += written

    def place(self) -> os.stat_result:
        """Sync, rename over the destination, sync the directory; the fstat of the file in place."""
        os.fsync(self.fd)
        self.check_name()
        os.rename(self.path, self.dest)
        fsync_directory(os.path.dirname(os.path.abspath(self.dest)))
        return os.fstat(self.fd)

    def discard(self) -> None:
        """Remove the partial copy (what it holds cannot be trusted), if the name still leads to it."""
        try:
            self.check_name()
            os.unlink(self.path)
        except (OSError, ArchiveError):
            pass

    def close(self, keep: bool = True) -> None:
        """Close; an empty partial copy is removed, there is nothing in it to resume from."""
        if self.fd is None:
            return
        if not keep or self.size() == 0:
            self.discard()
        os.close(self.fd)
        self.fd = None

    def chunk_path(self) -> str:
        return self.path + CHUNK_SUFFIX

    def new_chunk(self) -> int:
        """A new, empty file for one piece of the rest, beside the partial copy; its descriptor."""
        path = self.chunk_path()
        remove_quietly(path)
        return open_regular_file(path, os.O_RDWR | os.O_CREAT | os.O_EXCL)


def remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise os_error(exc, path, "removing")


def same_file(path: str, fd: int) -> bool:
    """Whether `path` (not followed if a link) is the file open as `fd`."""
    try:
        now = os.lstat(path)
    except OSError:
        return False
    mine = os.fstat(fd)
    return (now.st_dev, now.st_ino) == (mine.st_dev, mine.st_ino)


def stale_partials(dest: str, keep: str) -> list[str]:
    """Partial copies of `dest` for other content (`<dest>.<16 hex>.partial`, and their chunks), to remove once `dest` is in place."""
    directory, base = os.path.split(os.path.abspath(dest))
    pattern = re.compile(re.escape(base) + r"\.[0-9a-f]{16}" + re.escape(SUFFIX) + "(" + re.escape(CHUNK_SUFFIX) + ")?")
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    return [os.path.join(directory, n) for n in sorted(names) if pattern.fullmatch(n) and os.path.join(directory, n) != keep]
