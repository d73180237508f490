# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""SHA-256 checksums: parsed from the user, computed over files and over what streams through a
reader or writer, and the file identity that tells whether a checksum still describes a file."""

from __future__ import annotations

import hashlib
import os
from typing import IO

from ansible_collections.airgap.docker.plugins.module_utils.errors import InvalidInput
from ansible_collections.airgap.docker.plugins.module_utils.file_access import open_for_reading
from ansible_collections.airgap.docker.plugins.module_utils.streaming import CHUNK, read_chunks


def parse_sha256(value) -> str:
    """A SHA-256 given as `sha256:<hex>` or `<hex>`, as bare lowercase hex."""
    text = str(value).strip().lower()
    if text.startswith("sha256:"):
        text = text[len("sha256:"):]
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise InvalidInput("%r is not a SHA-256 checksum (64 hex digits, optionally prefixed with sha256:)." % value)
    return text


def file_sha256(path: str) -> tuple[str, int]:
    """(sha256 hex, size) of a file, read in chunks."""
    with open_for_reading(path) as handle:
        digest, size, _stat = hash_open_file(handle)
    return digest, size


def stat_identity(stat: os.stat_result) -> list:
    """What tells one version of a file from another: its inode, size, modification time and inode
    change time. The kernel sets ctime on every write, rename and chmod, and nobody can set it back."""
    return [stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns]


def hash_open_file(handle: IO[bytes]) -> tuple[str, int, os.stat_result | None]:
    """(sha256 hex, size, stat) of an open binary file, read from its start.

    `stat` is the file's fstat when nothing about the file changed while it was read (same
    identity before and after, and every byte of it read), else None: the digest then describes
    what was read, which is no longer necessarily the file, and must not be remembered for it.
    Identity comes from the open descriptor, never from the path, which may name another file by now.
    """
    before = os.fstat(handle.fileno())
    handle.seek(0)
    reader = HashingReader(handle)
    for _chunk in read_chunks(reader):
        pass
    after = os.fstat(handle.fileno())
    stable = stat_identity(before) == stat_identity(after) and reader.count == after.st_size
    return reader.sha256.hexdigest(), reader.count, after if stable else None


class HashingReader:
    """Wraps a binary file; hashes and counts what is read through it."""

    def __init__(self, raw):
        self._raw = raw
        self.sha256 = hashlib.sha256()
        self.count = 0

    def read(self, size: int = CHUNK) -> bytes:
        data = self._raw.read(size)
        self.sha256.update(data)
        self.count += len(data)
        return data

    def readinto(self, buffer) -> int:
        size = self._raw.readinto(buffer)
        self.sha256.update(memoryview(buffer)[:size])
        self.count += size
        return size

    def readable(self):
        return True


class HashingWriter:
    """Wraps a binary file; hashes and counts what is written through it."""

    def __init__(self, raw):
        self._raw = raw
        self.sha256 = hashlib.sha256()
        self.count = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.count += len(data)
        self._raw.write(data)
        return len(data)

    def flush(self):
        self._raw.flush()
