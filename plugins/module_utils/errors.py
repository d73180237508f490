# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Exceptions raised by the helpers; each module turns them into one fail_json."""

from __future__ import annotations

import errno

# Control characters as escapes: messages quote names taken from archives, which anyone may have
# written, and a name must not break the one-line sentence (or a terminal) with a newline or escape.
_ESCAPES = {code: "\\x%02x" % code for code in list(range(32)) + [127]}
_ESCAPES.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"})


def one_line(text) -> str:
    """text with its control characters escaped."""
    return str(text).translate(_ESCAPES)


class AirgapError(Exception):
    """Base class: the message is one sentence a user can act on, on one line."""

    def __init__(self, msg, **details):
        msg = one_line(msg)
        super().__init__(msg)
        self.msg = msg
        self.details = details


class EngineError(AirgapError):
    """The Docker engine could not be reached or refused a request."""


class NotFound(AirgapError):
    """The engine has no such object."""


class ImageNotFound(NotFound):
    """A requested image is not in the engine (or an archive)."""


class ContainerNotFound(NotFound):
    """A requested container is not in the engine."""


class ArchiveError(AirgapError):
    """An archive is missing, not a tar, truncated or otherwise unreadable."""


class ChecksumMismatch(ArchiveError):
    """An archive's content does not match the checksum its sidecar recorded."""


class CompressionError(AirgapError):
    """A compression is unknown or its implementation is unavailable."""


class SpaceError(AirgapError):
    """Not enough free space for a write."""


class InvalidInput(AirgapError):
    """An option value that cannot be used."""


class UnsafePath(AirgapError):
    """A path that is not what belongs there: a symbolic link, or another kind of file, where a directory belongs."""


class SignatureError(AirgapError):
    """A bundle's signature is missing, invalid or from a key that is not allowed."""


class MissingLayers(ArchiveError):
    """A thin archive's omitted layers are not in the engine."""


def os_error(exc: OSError, path: str, action: str) -> AirgapError:
    """An OSError as one of our errors, with a sentence that names the path."""
    if exc.errno == errno.ENOSPC:
        return SpaceError("No space left on the device while %s %s." % (action, path))
    if exc.errno in (errno.EACCES, errno.EPERM):
        return AirgapError("Permission denied while %s %s." % (action, path))
    if exc.errno == errno.ENOENT:
        return ArchiveError("%s does not exist." % path)
    return AirgapError("Error while %s %s: %s." % (action, path, exc.strerror or exc))
