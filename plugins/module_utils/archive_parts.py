# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Archives held as numbered parts, for media and links with a file size limit (FAT32 takes files
of at most 4 GiB - 1 byte, a DVD 4.7 GB, data diodes their own limit).

An archive `x.tar.zst` of S bytes split at P bytes is the files `x.tar.zst.part001`, `.part002`, ...:
every part P bytes but the last, which holds the rest. The layout depends on S and P only, so the
same archive always gives the same parts, and coreutils give them too:

    split -b P -d -a 3 --numeric-suffixes=1 x.tar.zst x.tar.zst.part    # the parts
    cat x.tar.zst.part??? > x.tar.zst                                    # the archive again
"""

from __future__ import annotations

import hashlib
import io
import os
import re

from ansible_collections.airgap.docker.plugins.module_utils.checksums import stat_identity
from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError, InvalidInput
from ansible_collections.airgap.docker.plugins.module_utils.file_access import open_regular
from ansible_collections.airgap.docker.plugins.module_utils.streaming import CHUNK

PART_FORMAT = "%s.part%03d"
MAX_PARTS = 999
# Parts smaller than this would make a directory of thousands of files out of a small archive.
MIN_SPLIT_SIZE = 1 << 20
PART_NAME = re.compile(r"^(?P<archive>.+)\.part(?P<number>[0-9]{3})$")
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(value) -> int | None:
    """Bytes from `4G`, `4095M`, `4 GiB` or a plain number (the units are powers of 1024); None for
    no limit (empty, 0 or None)."""
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip().lower().replace(" ", "")
    if not text:
        return None
    match = re.fullmatch(r"([0-9]+)([kmgt]?)(i?b)?", text)
    if not match or (match.group(3) and not match.group(2) and match.group(3) != "b"):
        raise InvalidInput("%r is not a size: give bytes, or a number with K, M, G or T (powers of 1024), "
                           "for example 4095M." % (value,))
    size = int(match.group(1)) * _UNITS[match.group(2)]
    if size == 0:
        return None
    if size < MIN_SPLIT_SIZE:
        raise InvalidInput("A split size of %s is below the smallest allowed, 1M." % (value,))
    return size


def part_name(path: str, number: int) -> str:
    """The name of part `number` (from 1) of the archive at `path`."""
    return PART_FORMAT % (path, number)


def plan(size: int, split_size: int | None) -> list[int]:
    """The sizes of the parts an archive of `size` bytes is held as; [] when it is held whole."""
    if not split_size or size <= split_size:
        return []
    count = -(-size // split_size)
    if count > MAX_PARTS:
        raise InvalidInput("An archive of %d bytes split at %d bytes would make %d parts; at most %d are allowed, "
                           "choose a larger split size." % (size, split_size, count, MAX_PARTS))
    return [split_size] * (count - 1) + [size - split_size * (count - 1)]


def is_layout(sizes: list[int], size: int) -> bool:
    """The part sizes are a layout plan() can give: at least two parts, all of one size but the
    last, which is not larger, adding up to the archive's size."""
    return (2 <= len(sizes) <= MAX_PARTS and sum(sizes) == size and all(s > 0 for s in sizes)
            and all(s == sizes[0] for s in sizes[:-1]) and sizes[-1] <= sizes[0])


def existing_parts(path: str) -> list[str]:
    """The part files of `path` that exist, from part001 on, up to the first missing number."""
    found = []
    while len(found) < MAX_PARTS and os.path.lexists(part_name(path, len(found) + 1)):
        found.append(part_name(path, len(found) + 1))
    return found


def part_numbers(path: str) -> list[int]:
    """The numbers of every part file of `path` in its directory, in order, gaps and all."""
    directory = os.path.dirname(os.path.abspath(path))
    prefix = os.path.basename(path) + ".part"
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    matches = (PART_NAME.match(name) for name in names if name.startswith(prefix))
    return sorted(n for n in (int(m.group("number")) for m in matches if m and m.group("archive") == prefix[:-5]) if 1 <= n <= MAX_PARTS)


def all_parts(path: str) -> list[str]:
    """Every part file of `path` on disk, also those beyond a gap (left by an earlier split)."""
    return [part_name(path, number) for number in part_numbers(path)]


def first_part_of(path: str) -> str | None:
    """For `x.part001`, the archive `x`; None when `path` does not name a first part."""
    match = PART_NAME.match(path)
    return match.group("archive") if match and match.group("number") == "001" else None


class PartsReader(io.RawIOBase):
    """The parts of an archive read as one stream, each opened (regular files only) when reached.
    `stats` holds the fstat of each part once it was read to its end."""

    def __init__(self, paths: list[str]):
        super().__init__()
        self.paths = list(paths)
        self.stats = []
        self._index = -1
        self._handle = None

    def readable(self):
        return True

    def readinto(self, buffer) -> int:
        while True:
            if self._handle is None and not self._next():
                return 0
            count = self._handle.readinto(buffer)
            if count:
                return count
            self.stats.append(os.fstat(self._handle.fileno()))
            self._handle.close()
            self._handle = None

    def _next(self):
        self._index += 1
        if self._index >= len(self.paths):
            return False
        path = self.paths[self._index]
        try:
            self._handle = open_regular(path)
        except ArchiveError:
            if not os.path.lexists(path):
                raise ArchiveError("%s is missing: the archive is held as %d parts and this one is not there."
                                   % (path, len(self.paths)))
            raise
        return True

    def close(self):
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        super().close()


def hash_parts(paths: list[str]) -> tuple[str, list[dict]]:
    """(sha256 of the archive the parts make, [{"size", "sha256", "stat"} per part]), read once."""
    whole = hashlib.sha256()
    records = []
    for path in paths:
        with PartsReader([path]) as reader:
            part, size = hashlib.sha256(), 0
            for chunk in iter(lambda: reader.read(CHUNK), b""):
                whole.update(chunk)
                part.update(chunk)
                size += len(chunk)
            records.append({"size": size, "sha256": part.hexdigest(), "stat": reader.stats[-1] if reader.stats else None})
    return whole.hexdigest(), records


def remove_files(paths) -> None:
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def held_as_parts(cache, bundle_dir: str, relative: str, sha256: str, size: int) -> bool:
    """True when the bundle holds the archive `relative` as parts that make exactly `size` bytes
    with `sha256`. Known parts come from the bundle's VerifiedCache; others are hashed once."""
    return parts_of(cache, bundle_dir, relative, sha256, size) is not None


def parts_of(cache, bundle_dir: str, relative: str, sha256: str, size: int) -> list[dict] | None:
    """[{"path" (relative), "size", "sha256"}] of the parts the bundle holds `relative` as, when they
    are a layout of plan() and make the archive with `sha256`; else None."""
    full = os.path.join(bundle_dir, relative)
    paths = existing_parts(full)
    try:
        sizes = [os.stat(p).st_size for p in paths]
    except OSError:
        return None
    if not is_layout(sizes, size):
        return None
    relatives = [part_name(relative, n) for n in range(1, len(paths) + 1)]
    digests = _known_digests(cache, relatives, paths)
    if digests is None or cache.joined(relative) != (digests, sha256):
        try:
            whole, records = hash_parts(paths)
        except ArchiveError:
            return None
        digests = [r["sha256"] for r in records]
        for rel, record in zip(relatives, records):
            if record["stat"] is not None:
                cache.remember(rel, record["stat"], record["sha256"])
        if whole != sha256:
            return None
        cache.remember_joined(relative, digests, whole)
    return [{"path": rel, "size": s, "sha256": d} for rel, s, d in zip(relatives, sizes, digests)]


def _known_digests(cache, relatives, paths):
    """The parts' digests from the memo when every part is the file version it hashed, else None."""
    digests = []
    for rel, path in zip(relatives, paths):
        known = cache.entries.get(rel)
        try:
            found = os.stat(path)
        except OSError:
            return None
        if not isinstance(known, dict) or known.get("stat") != stat_identity(found) or not known.get("sha256"):
            return None
        digests.append(known["sha256"])
    return digests
