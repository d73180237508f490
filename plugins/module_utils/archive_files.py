# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The files an archive is held as, seen as one: the archive file itself, or the numbered parts
that archive_parts describes, for media with a file size limit.

Everything that reads an existing archive opens it here, so that a split archive is read, hashed,
remembered (under the identity of every part) and verified exactly as a whole one. A whole file
at the archive's path wins over parts beside it.
"""

from __future__ import annotations

import hashlib
import io
import os

from ansible_collections.airgap.docker.plugins.module_utils.archive_parts import (
    PartsReader,
    existing_parts,
    first_part_of,
    is_layout,
    part_name,
    part_numbers,
)
from ansible_collections.airgap.docker.plugins.module_utils.checksums import file_sha256
from ansible_collections.airgap.docker.plugins.module_utils.constants import KIND_CONTAINER, KIND_IMAGES
from ansible_collections.airgap.docker.plugins.module_utils.errors import AirgapError, ArchiveError, os_error
from ansible_collections.airgap.docker.plugins.module_utils.file_access import open_for_reading, stat_or_none
from ansible_collections.airgap.docker.plugins.module_utils.sidecar import parts_of, read_sidecar


class PartsStat:
    """What the modules use of an os.stat_result, for an archive held as parts: the size is the
    archive's and the mtime the newest part's, while the device, inode and ctime list every part's,
    so that what is remembered under this identity (verified_memo.file_identity) no longer holds
    once any part is written to, replaced, added or gone."""

    def __init__(self, stats: list):
        self.parts = list(stats)
        self.st_dev = [s.st_dev for s in stats]
        self.st_ino = [s.st_ino for s in stats]
        self.st_size = sum(s.st_size for s in stats)
        self.st_mtime_ns = max(s.st_mtime_ns for s in stats)
        self.st_ctime_ns = [s.st_ctime_ns for s in stats]


def resolve(path: str) -> str:
    """The archive a path names: `x` for its first part `x.part001`, else the path itself."""
    return first_part_of(path) or path


def read_from_parts(path: str) -> bool:
    """True when the archive is read from its parts: no file at path, and a part001."""
    return not os.path.lexists(path) and os.path.lexists(part_name(path, 1))


def archive_files(path: str) -> list[str]:
    """The files the archive is read from: [path] when it exists, else its parts (part001 up to the
    first missing number); [] when there is neither."""
    return [path] if os.path.lexists(path) else existing_parts(path)


def archive_stat(path: str):
    """os.stat of the archive, a PartsStat when it is held as parts, None when neither is there."""
    if not read_from_parts(path):
        return stat_or_none(path)
    stats = [stat_or_none(part) for part in existing_parts(path)]
    return PartsStat(stats) if stats and None not in stats else None


def part_sizes(path: str) -> list[int]:
    """The sizes of the parts the archive is read from ([] when it is held whole)."""
    return _sizes(existing_parts(path)) if read_from_parts(path) else []


def _sizes(paths: list[str]) -> list[int]:
    sizes = []
    for path in paths:
        try:
            sizes.append(os.stat(path).st_size)
        except OSError as exc:
            raise os_error(exc, path, "reading")
    return sizes


def _missing(part: str, path: str, found: int, verb: str) -> ArchiveError:
    return ArchiveError("%s is missing: %s is held as numbered parts and only %d part(s) from part001 on are there; "
                        "nothing was %s." % (part, path, found, verb))


def check_parts(path: str, record: dict | None, verb: str) -> None:
    """Refuse, naming the part, a split archive that is not all there, before anything is read:
    a gap in the numbers, fewer parts than its sidecar lists (`record`: the sidecar's `archive`),
    a part whose size is not the layout's or the sidecar's, parts that do not add up to its size."""
    numbers = [] if os.path.lexists(path) else part_numbers(path)
    if not numbers:
        return
    found = existing_parts(path)
    listed = parts_of(record) or []
    # A split archive has two parts at least; a part beyond a gap, or listed by the sidecar, shows one missing.
    if numbers[-1] > len(found) or len(listed) > len(found) or len(found) == 1:
        raise _missing(part_name(path, len(found) + 1), path, len(found), verb)
    sizes = _sizes(found)
    for part, size, entry in zip(found, sizes, listed):
        if size != entry["size"]:
            raise ArchiveError("%s is %d bytes, but the sidecar of %s records %d: the part is truncated or was replaced; "
                               "nothing was %s." % (part, size, path, entry["size"], verb))
    if not is_layout(sizes, sum(sizes)):
        odd = _odd_part(sizes)
        raise ArchiveError("%s is %d bytes, but every part of a split archive except the last has the size of part001 "
                           "(%d bytes) and none is larger or empty: the parts of %s are not one split archive; nothing "
                           "was %s." % (found[odd], sizes[odd], sizes[0], path, verb))
    recorded = (record or {}).get("size")
    if isinstance(recorded, int) and sum(sizes) != recorded:
        if sum(sizes) < recorded and sizes[-1] == sizes[0]:
            raise _missing(part_name(path, len(found) + 1), path, len(found), verb)
        raise ArchiveError("The parts of %s make %d bytes, but its sidecar records %d: a part is missing, truncated or "
                           "was replaced; nothing was %s." % (path, sum(sizes), recorded, verb))


def _odd_part(sizes: list[int]) -> int:
    """The index of the first part whose size no split (archive_parts.plan) gives."""
    for index, size in enumerate(sizes[1:], 1):
        if size == 0 or size > sizes[0] or (index < len(sizes) - 1 and size != sizes[0]):
            return index
    return 0


class _PartDigests(io.RawIOBase):
    """The parts read as one stream (PartsReader), with the size and sha256 of each part read to its end."""

    def __init__(self, parts: PartsReader):
        super().__init__()
        self._parts = parts
        self.done = []  # (size, sha256) per part read to its end
        self._digest = hashlib.sha256()
        self._size = 0

    def readable(self):
        return True

    def readinto(self, buffer) -> int:
        count = self._parts.readinto(buffer)
        # One call returns bytes of one part only; parts it finished on the way are in `stats`.
        while len(self.done) < len(self._parts.stats):
            self.done.append((self._size, self._digest.hexdigest()))
            self._digest, self._size = hashlib.sha256(), 0
        if count:
            self._digest.update(memoryview(buffer)[:count])
            self._size += count
        return count


class OpenedArchive:
    """An archive opened for one streaming read. `reader` gives its bytes (the parts one after the
    other); `stat_before` and stat_after() tell whether the files changed while they were read;
    parts() is what each part held, and damaged_part() names a part that is not what the sidecar
    records, to explain a failure."""

    def __init__(self, path: str):
        self.path = path
        self.paths = existing_parts(path) if read_from_parts(path) else []
        if not self.paths:
            self._handle = open_for_reading(path)
            self.reader = self._handle
            self.stat_before = os.fstat(self._handle.fileno())
            return
        try:
            self.stat_before = PartsStat([os.stat(part) for part in self.paths])
        except OSError as exc:
            raise os_error(exc, path, "reading")
        self._handle = PartsReader(self.paths)
        self.reader = _PartDigests(self._handle)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self) -> None:
        self._handle.close()

    def stat_after(self):
        """The files' stat now that they were read, or None when a part was not read to its end."""
        if not self.paths:
            return os.fstat(self._handle.fileno())
        stats = self._handle.stats
        return PartsStat(stats) if len(stats) == len(self.paths) else None

    def parts(self) -> list[dict]:
        """[{"name", "size", "sha256"}] of the parts, once all were read; [] for a whole file."""
        if not self.paths or len(self.reader.done) != len(self.paths):
            return []
        return [{"name": os.path.basename(part), "size": size, "sha256": digest}
                for part, (size, digest) in zip(self.paths, self.reader.done)]

    def damaged_part(self) -> str | None:
        """After a failure: a phrase naming the first part read so far that differs from what the
        sidecar records, or None. The sidecar only names the culprit here; it never fails a read."""
        recorded = sidecar_parts(self.path)
        if not self.paths or recorded is None or len(recorded) != len(self.paths):
            return None
        for index, (part, entry) in enumerate(zip(self.paths, recorded)):
            finished = index < len(self.reader.done)
            if finished:
                size, digest = self.reader.done[index]
            else:
                try:  # the part being read when it failed: the rest of it is read once more
                    digest, size = file_sha256(part)
                except AirgapError:
                    return None
            if (size, digest) != (entry["size"], entry["sha256"]):
                return ("%s does not match the sidecar of %s (sha256 %s, recorded %s): the part is damaged or belongs to "
                        "another archive" % (part, self.path, digest, entry["sha256"]))
            if not finished:
                return None
        return None


def sidecar_parts(path: str) -> list[dict] | None:
    """The parts the sidecar next to the archive records (of an image or a container archive)."""
    for kind in (KIND_IMAGES, KIND_CONTAINER):
        document = read_sidecar(path, kind=kind)
        if document is not None:
            return parts_of(document.get("archive"))
    return None
