# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A directory locked while a run writes (exclusive) or reads (shared) it."""

from __future__ import annotations

import errno
import fcntl
import os
import time

from ansible_collections.airgap.docker.plugins.module_utils.errors import AirgapError, os_error


class LockTimeout(AirgapError):
    """Another run held a directory's lock for longer than we were asked to wait."""


_LOCK_UNSUPPORTED = (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL, errno.EBADF, errno.ENOSYS)


class DirectoryLock:
    """An flock() on a directory, held while a run writes (exclusive) or reads (shared) it.

    A second writer waits up to `timeout` seconds, then fails with one sentence that says why.
    The lock belongs to the open descriptor: the kernel drops it when the process ends, however
    it ends. On file systems where directories cannot be locked (NFS), runs are not serialized.
    """

    def __init__(self, directory: str, timeout: float, shared: bool = False, what: str = "the directory"):
        self.directory = directory
        self.timeout = timeout
        self.shared = shared
        self.what = what
        self.fd = None

    def __enter__(self) -> DirectoryLock:
        try:
            self.fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            return self  # nothing to protect yet; whoever creates it locks it
        except OSError as exc:
            raise os_error(exc, self.directory, "opening")
        kind = fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX
        deadline = time.monotonic() + max(0, self.timeout)
        pause = 0.05
        while True:
            try:
                fcntl.flock(self.fd, kind | fcntl.LOCK_NB)
                return self
            except OSError as exc:
                if exc.errno in _LOCK_UNSUPPORTED:
                    return self
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    self._close()
                    raise os_error(exc, self.directory, "locking")
            if time.monotonic() >= deadline:
                self._close()
                raise LockTimeout(
                    "Another run is %s %s %s (it holds the directory's lock), and it was still busy after %g second(s); "
                    "nothing was changed, run again once it is done." % (
                        "writing" if self.shared else "using", self.what, self.directory, self.timeout),
                    directory=self.directory, timeout=self.timeout)
            time.sleep(pause)
            pause = min(pause * 2, 1.0)

    def __exit__(self, *exc_info):
        self._close()
        return False

    def _close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
