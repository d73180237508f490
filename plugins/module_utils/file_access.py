# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Opening and looking at files one sentence at a time: a missing file, a directory, a FIFO or a
device where a file is expected, or a directory that cannot be written, is refused with a clear error."""

from __future__ import annotations

import os
import stat as stat_module
from typing import IO

from ansible_collections.airgap.docker.plugins.module_utils.errors import AirgapError, ArchiveError, os_error


def check_writable_directory(path: str) -> None:
    """Fail before any work when the file's directory is missing or not writable."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ArchiveError("The directory %s for %s does not exist." % (directory, os.path.basename(path)))
    if not os.access(directory, os.W_OK | os.X_OK):
        raise AirgapError("Permission denied: cannot create files in %s." % directory)


def stat_or_none(path: str) -> os.stat_result | None:
    """os.stat of path, or None when there is no such file."""
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise os_error(exc, path, "reading")


def open_for_reading(path: str) -> IO[bytes]:
    """An archive opened for reading; a directory, FIFO or device in its place is one sentence at once."""
    try:
        return open_regular(path)
    except ArchiveError as exc:
        if os.path.isdir(path):
            raise ArchiveError("%s is a directory, not an archive." % path)
        raise exc


def open_regular(path: str) -> IO[bytes]:
    """`path` opened for reading when it is a regular file (after symbolic links); a FIFO or a device
    in its place is refused at once instead of blocking the run or reading without end."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except IsADirectoryError:
        raise ArchiveError("%s is a directory, not a file." % path)
    except OSError as exc:
        raise os_error(exc, path, "opening")
    if not stat_module.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ArchiveError("%s is not a regular file." % path)
    return os.fdopen(fd, "rb")
