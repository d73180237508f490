# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""How a bundle holds each archive, whole or as parts (archive_parts), and the moves from one to
the other: split a whole archive, join parts, or split parts again at another size.

Every move is split_target.lay_out_again, as the modules lay their archives out: it reads what the
bundle holds, checks it against the archive's recorded sha256 while it writes the new files (free
space checked first), and only then replaces the old ones. Nothing is joined in memory, and a split
never holds more than the archive and its parts at once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ansible_collections.airgap.docker.plugins.module_utils import archive_parts, bundle, split_target
from ansible_collections.airgap.docker.plugins.module_utils.archive_parts import all_parts
from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError, os_error
from ansible_collections.airgap.docker.plugins.module_utils.file_access import stat_or_none


@dataclass
class Arrangement:
    """What holding one archive as wanted takes: its parts (None: held whole), the files to write and
    those to remove afterwards (bundle paths), and whether the parts' checksums are not known yet
    (check mode, before a split)."""

    parts: list[dict] | None = None
    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    pending: bool = False


def arrange(bundle_dir: str, entry: dict, split_size: int | None, cache, check_mode: bool) -> Arrangement:
    """Hold the archive of `entry` (path, size, sha256) whole or as parts of `split_size` bytes, moving
    it from how the bundle holds it now; in check mode only say what would move."""
    relative, size, digest = entry["path"], entry["size"], entry["sha256"]
    whole = bundle.bundle_file(bundle_dir, relative)
    wanted = archive_parts.plan(size, split_size)
    names = [archive_parts.part_name(relative, n) for n in range(1, len(wanted) + 1)]
    whole_stat = stat_or_none(whole)
    current = archive_parts.parts_of(cache, bundle_dir, relative, digest, size)
    # Every part file there is, also beyond a gap (left by an earlier split).
    strays = [relative + name[len(whole):] for name in all_parts(whole)]
    if wanted and current is not None and [p["size"] for p in current] == wanted:
        return Arrangement(parts=current, removed=sorted(set(strays) - set(names)) + [relative] * (whole_stat is not None))
    if whole_stat is not None and whole_stat.st_size == size and (
            not wanted and (current is None or _whole_is_the_archive(cache, relative, whole, digest))):
        return Arrangement(removed=strays)
    if current is None and (whole_stat is None or whole_stat.st_size != size):
        if not wanted:
            return Arrangement()  # the archive is not in the bundle yet: it may be put there later
        if not check_mode:
            raise ArchiveError("%s cannot be split: the bundle %s holds neither the archive nor all of its parts."
                               % (relative, bundle_dir))
        return Arrangement(parts=_planned(names, wanted), written=names, pending=True)
    # A move: the whole archive split, parts joined, or parts split at another size.
    written = names or [relative]
    removed = sorted(set(strays) - set(names)) + [relative] * (bool(wanted) and whole_stat is not None)
    if check_mode:
        return Arrangement(parts=_planned(names, wanted), written=written, removed=removed, pending=True)
    if whole_stat is not None and current is not None:
        # Verified parts and a whole file that is not the archive: the file goes, the parts are read.
        archive_parts.remove_files([whole])
    return Arrangement(parts=_move(whole, split_size, digest, cache, relative), written=written, removed=removed)


def _planned(names, sizes):
    """The parts a split will write, their checksums not known yet (check mode)."""
    return [{"path": name, "size": size, "sha256": None} for name, size in zip(names, sizes)] or None


def _whole_is_the_archive(cache, relative, whole, digest):
    try:
        return cache.sha256(relative, whole)[0] == digest
    except ArchiveError:
        return False


def _move(whole, split_size, digest, cache, relative):
    """Lay the archive out again (split_target.lay_out_again: checked against `digest`, free space
    first, the old layout's files removed as the new one is renamed into place) and remember what
    was written, so that the next run does not read it again. Returns its parts, or None (whole)."""
    target = split_target.lay_out_again(whole, split_size, digest)
    if target is None:
        return None
    written = target.temp_stat()
    records = target.records()
    try:
        target.commit()
    except OSError as exc:
        raise os_error(exc, whole, "laying out")
    if not records:
        _remember(cache, relative, whole, written, digest)
        return None
    parts = []
    for number, (record, stat) in enumerate(zip(records, written.parts), 1):
        path = archive_parts.part_name(relative, number)
        _remember(cache, path, archive_parts.part_name(whole, number), stat, record["sha256"])
        parts.append({"path": path, "size": record["size"], "sha256": record["sha256"]})
    cache.remember_joined(relative, [p["sha256"] for p in parts], digest)
    return parts


def _remember(cache, relative, full, before, digest):
    """Vouch for what was just written, while only its rename changed it (its inode change time)."""
    try:
        after = os.stat(full)
    except OSError:
        return
    if (after.st_ino, after.st_size, after.st_mtime_ns) == (before.st_ino, before.st_size, before.st_mtime_ns):
        cache.remember(relative, after, digest)
