# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""How a bundle holds each archive, whole or as parts (archive_parts), and the moves from one to
the other: split a whole archive, join parts, or split parts again at another size.

Every move reads what the bundle holds, checks it against the archive's recorded sha256 while it
writes the new files, and only then removes the old ones. Nothing is joined in memory, and a split
never holds more than the archive and its parts at once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from ansible_collections.airgap.docker.plugins.module_utils import archive_parts, bundle
from ansible_collections.airgap.docker.plugins.module_utils.atomic_file import AtomicFile
from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError, ChecksumMismatch
from ansible_collections.airgap.docker.plugins.module_utils.file_access import open_regular, stat_or_none
from ansible_collections.airgap.docker.plugins.module_utils.streaming import CHUNK


@dataclass
class Arrangement:
    """What holding one archive as wanted takes: its parts (None: held whole), the files to write and
    those to remove afterwards (bundle paths), and whether the parts' checksums are not known yet
    (check mode, before a split)."""

    parts: list[dict] | None = None
    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    pending: bool = False


def arrange(bundle_dir: str, entry: dict, split_size: int | None, cache, check_mode: bool, mode: int) -> Arrangement:
    """Hold the archive of `entry` (path, size, sha256) whole or as parts of `split_size` bytes, moving
    it from how the bundle holds it now; in check mode only say what would move."""
    relative, size, digest = entry["path"], entry["size"], entry["sha256"]
    whole = bundle.bundle_file(bundle_dir, relative)
    wanted = archive_parts.plan(size, split_size)
    whole_stat = stat_or_none(whole)
    has_whole = whole_stat is not None and whole_stat.st_size == size
    current = archive_parts.parts_of(cache, bundle_dir, relative, digest, size)
    leftovers = [_relative(relative, p) for p in archive_parts.existing_parts(whole)]
    if not wanted:
        if has_whole or current is None:
            return Arrangement(removed=leftovers if has_whole else [])
        if not check_mode:
            _join(bundle_dir, relative, current, digest, mode)
        return Arrangement(written=[relative], removed=leftovers)
    names = [archive_parts.part_name(relative, n) for n in range(1, len(wanted) + 1)]
    if current is not None and [p["size"] for p in current] == wanted:
        return Arrangement(parts=current, removed=[relative] if whole_stat is not None else [])
    if not has_whole and current is None:
        if check_mode:
            return Arrangement(written=names, pending=True)
        raise ArchiveError("%s cannot be split: the bundle %s holds neither the archive nor all of its parts."
                           % (relative, bundle_dir))
    stale = sorted(set(leftovers) - set(names)) + ([relative] if whole_stat is not None else [])
    if check_mode:
        return Arrangement(written=names, removed=stale, pending=True)
    sources = [whole] if has_whole else [bundle.bundle_file(bundle_dir, p["path"]) for p in current]
    parts = _split(sources, whole, wanted, digest, mode, cache, relative)
    return Arrangement(parts=parts, written=names, removed=stale)


def remove(bundle_dir: str, paths, cache) -> None:
    """Remove files of the bundle that no longer hold anything the manifest lists."""
    for path in paths:
        archive_parts.remove_files([bundle.bundle_file(bundle_dir, path)])
        cache.forget(path)


def _relative(relative, full_part):
    return relative + full_part[full_part.rindex(".part"):]


def _split(sources, whole, sizes, digest, mode, cache, relative):
    """The parts written from `sources` (the whole archive, or parts of another size: every one is
    opened before the first new part replaces any of them)."""
    handles = [open_regular(path) for path in sources]
    try:
        reader = _Chain(handles)
        records = archive_parts.write_parts(reader, whole, sizes, digest, mode)
    finally:
        for handle in handles:
            handle.close()
    parts = []
    for number, record in enumerate(records, 1):
        path = archive_parts.part_name(relative, number)
        if record["stat"] is not None:
            cache.remember(path, record["stat"], record["sha256"])
        parts.append({"path": path, "size": record["size"], "sha256": record["sha256"]})
    cache.remember_joined(relative, [p["sha256"] for p in parts], digest)
    return parts


def _join(bundle_dir, relative, parts, digest, mode):
    """The archive written whole again from its parts, checked against `digest` before it is renamed into place."""
    handles = [open_regular(bundle.bundle_file(bundle_dir, p["path"])) for p in parts]
    target = AtomicFile(bundle.bundle_file(bundle_dir, relative), mode=mode)
    try:
        whole, reader = hashlib.sha256(), _Chain(handles)
        for chunk in iter(lambda: reader.read(CHUNK), b""):
            whole.update(chunk)
            target.file.write(chunk)
        if whole.hexdigest() != digest:
            raise ChecksumMismatch("The parts of %s make sha256 %s, the record says %s; they were not joined."
                                   % (relative, whole.hexdigest(), digest))
        target.commit()
    except BaseException:
        target.abort()
        raise
    finally:
        for handle in handles:
            handle.close()


class _Chain:
    """Open files read one after the other as one stream."""

    def __init__(self, handles):
        self.handles = list(handles)

    def read(self, size=CHUNK):
        while self.handles:
            data = self.handles[0].read(size)
            if data:
                return data
            self.handles.pop(0)
        return b""
