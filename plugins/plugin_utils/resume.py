# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""How much of a partial copy can be trusted, block by block.

sftp writes with many requests in flight: a copy cut off mid-way can hold a run of zeros before the
last bytes that arrived, and its size says nothing about how much of it is right. So the partial is
never trusted by its size. Both sides hash the same fixed blocks (the remote host with `dd | sha256sum`,
which GNU coreutils and busybox both have), the longest run of matching blocks from the start is kept,
and the rest is cut off and sent again.
"""

from __future__ import annotations

import hashlib
import os

# The remote host reads with `dd bs=UNIT`: every block starts on a multiple of it, and a block can
# end between two units only where the file the remote host reads ends (dd then stops at its end).
UNIT = 1 << 20
# What one hash covers: small enough that a resume loses little, large enough that a multi-gigabyte
# partial takes a few hundred dd runs.
BLOCK = 32 << 20
# The most that one temporary file carries when only the rest of a file moves: what the controller's
# temporary directory (or the remote one) must hold at once, whatever the archive's size.
CHUNK = 256 << 20
_READ = 1 << 20


def blocks(limit: int, remote_end: int) -> list[tuple[int, int]]:
    """(offset, length) of the blocks that cover the first `limit` bytes, for a remote file that ends
    at `remote_end`; a last piece that dd could not read exactly is left out (and so sent again)."""
    found, offset = [], 0
    while offset < limit:
        end = min(offset + BLOCK, limit)
        if end % UNIT and end != remote_end:
            end -= end % UNIT
        if end <= offset:
            break
        found.append((offset, end - offset))
        offset = end
    return found


def local_digests(fd: int, spans: list[tuple[int, int]]) -> list[str]:
    """sha256 of each span of the open file, read with pread (the descriptor's position is not used)."""
    digests = []
    for offset, length in spans:
        digest, done = hashlib.sha256(), 0
        while done < length:
            data = os.pread(fd, min(_READ, length - done), offset + done)
            if not data:
                break
            digest.update(data)
            done += len(data)
        digests.append(digest.hexdigest())
    return digests


def matching_prefix(spans: list[tuple[int, int]], ours: list[str], theirs: list[str]) -> int:
    """Bytes from the start covered by spans whose digests agree on both sides, up to the first that does not."""
    kept = 0
    for (offset, length), mine, other in zip(spans, ours, theirs):
        if mine != other or offset != kept:
            break
        kept += length
    return kept


def chunks(start: int, end: int) -> list[tuple[int, int]]:
    """(offset, length) of the pieces, CHUNK bytes at most, that move the bytes from `start` to `end`."""
    return [(offset, min(CHUNK, end - offset)) for offset in range(start, end, CHUNK)]


def short_hash(text: str, length: int = 8) -> str:
    """A few hex digits that tell `text` apart in a file name (an inventory host's name)."""
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:length]
