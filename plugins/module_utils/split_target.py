# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Writing an archive in the layout `split_size` asks for: one file while it fits, numbered parts
(archive_parts) once it does not, decided as the bytes arrive, with no second copy of the archive.

Every part is a temporary file beside the archive (atomic_file) until commit(), which the caller
calls only once the whole stream was written and checked: a failure or a signal before it leaves
the previous archive, whole or split, as it was, and a killed run leaves only hidden `.partial`
files, which no reader mistakes for parts.
"""

from __future__ import annotations

import hashlib
import os

from ansible_collections.airgap.docker.plugins.module_utils.archive_files import (
    OpenedArchive,
    PartsStat,
    archive_stat,
    part_sizes,
    read_from_parts,
)
from ansible_collections.airgap.docker.plugins.module_utils.archive_parts import (
    MAX_PARTS,
    all_parts,
    part_name,
    part_numbers,
    plan,
    remove_files,
)
from ansible_collections.airgap.docker.plugins.module_utils.atomic_file import AtomicFile, remove_dead_partials
from ansible_collections.airgap.docker.plugins.module_utils.disk_space import check_free_space
from ansible_collections.airgap.docker.plugins.module_utils.errors import ChecksumMismatch, InvalidInput, os_error
from ansible_collections.airgap.docker.plugins.module_utils.streaming import read_chunks

# Every this many bytes of a part, the kernel is asked to start writing them to disk (AtomicFile.start_writeback).
WRITE_BEHIND = 16 << 20


def _mode_of(path: str) -> int | None:
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        return None


class SplitTarget:
    """A sink for an archive's bytes (`write`), and the AtomicFile calls the writers use: `file`,
    `sync`, `temp_stat`, `commit`, `abort`. Without split_size it is one AtomicFile."""

    def __init__(self, path: str, split_size: int | None = None):
        self.path = path
        self.split_size = split_size
        # A rewritten archive keeps the mode of the file or parts it replaces.
        mode = _mode_of(path)
        self._mode = mode if mode is not None else _mode_of(part_name(path, 1))
        self._files = [AtomicFile(path, mode=self._mode, direct=True)]
        self._mode = os.stat(self._files[0].temp_path).st_mode & 0o7777
        # Parts are hashed only when the archive may be split: a whole archive's sha256 is the
        # writer's, and hashing every byte twice cost a second of CPU per GiB.
        self._digests = [hashlib.sha256() if split_size else None]
        self._sizes = [0]
        self.file = self

    @property
    def split(self) -> bool:
        return len(self._files) > 1

    @property
    def temp_path(self) -> str | None:
        """The temporary file being written (the last part's, once split)."""
        return self._files[-1].temp_path

    def write(self, data) -> int:
        view = memoryview(data)
        while view:
            if self.split_size and self._sizes[-1] == self.split_size:
                self._next_part()
            room = self.split_size - self._sizes[-1] if self.split_size else len(view)
            chunk = view[:room]
            self._files[-1].file.write(chunk)
            if self.split_size:
                self._digests[-1].update(chunk)
            self._sizes[-1] += len(chunk)
            view = view[len(chunk):]
            if self._sizes[-1] % WRITE_BEHIND < len(chunk):
                self._files[-1].start_writeback(self._sizes[-1] - self._sizes[-1] % WRITE_BEHIND)
        return len(data)

    def _next_part(self):
        """The current file is full and more bytes come: the archive is split, and a part begins."""
        if len(self._files) >= MAX_PARTS:
            raise InvalidInput("%s would need more than %d parts of %d bytes; choose a larger split_size. Nothing was "
                               "written." % (self.path, MAX_PARTS, self.split_size))
        # A finished part is flushed and closed at once: two files at most are open at any time.
        self._files[-1].sync()
        self._files.append(AtomicFile(part_name(self.path, len(self._files) + 1), mode=self._mode, direct=True))
        self._digests.append(hashlib.sha256())
        self._sizes.append(0)

    def flush(self) -> None:
        self._files[-1].file.flush()

    def sync(self) -> None:
        if not self._files[-1].file.closed:
            self._files[-1].sync()

    def temp_stat(self):
        """fstat of what was written (a PartsStat once split), from descriptors held until commit."""
        stats = [target.temp_stat() for target in self._files]
        return PartsStat(stats) if self.split else stats[0]

    def records(self) -> list[dict]:
        """[{"name", "size", "sha256"}] of the parts, as the sidecar records them; [] for a whole archive."""
        if not self.split:
            return []
        return [{"name": os.path.basename(part_name(self.path, number)), "size": size, "sha256": digest.hexdigest()}
                for number, (size, digest) in enumerate(zip(self._sizes, self._digests), 1)]

    def commit(self) -> None:
        """Put the files in place; the files of the previous layout that the new one does not use go.

        A whole archive is renamed over the old file first, then stale parts go. Parts replace
        the old files only after these are gone: were the run killed half-way, a prefix of the
        new parts would be there, which reads as a truncated archive and is refused, never a
        mixture of two archives that might pass for one.
        """
        self.sync()
        if not self.split:
            self._files[0].commit()
            remove_files(all_parts(self.path))
        else:
            remove_files([self.path] + all_parts(self.path))
            for number, target in enumerate(self._files, 1):
                target.path = part_name(self.path, number)
                target.commit()
        remove_dead_part_partials(self.path)

    def abort(self) -> None:
        for target in self._files:
            target.abort()


def remove_dead_part_partials(path: str) -> None:
    """Remove the temporary parts that killed writers of path left (never those of a live one)."""
    prefix = ".%s.part" % os.path.basename(path)
    try:
        names = os.listdir(os.path.dirname(os.path.abspath(path)) or ".")
    except OSError:
        return
    numbers = {name[len(prefix):len(prefix) + 3] for name in names if name.startswith(prefix)}
    for number in sorted(n for n in numbers if n.isdigit()):
        remove_dead_partials(part_name(path, int(number)))


def layout_problem(path: str, split_size: int | None) -> str | None:
    """Why the files at path are not the layout split_size asks for the archive they hold (its
    size: the whole file's, or the parts'), as a phrase; None when they are."""
    stat = archive_stat(path)
    if stat is None:
        return None
    wanted = plan(stat.st_size, split_size)
    if read_from_parts(path):
        sizes = part_sizes(path)
        if not wanted:
            return "it is held as %d parts, and %s it whole" % (len(sizes), _asks(split_size))
        if sizes != wanted or len(part_numbers(path)) != len(sizes):
            return "it is held as %d parts of up to %d bytes, and split_size asks for %d parts of %d bytes" % (
                len(sizes), max(sizes), len(wanted), split_size)
        return None
    if wanted:
        return "it is one file of %d bytes, and split_size asks for %d parts of %d bytes" % (stat.st_size, len(wanted), split_size)
    if part_numbers(path):
        return "parts of an earlier split are left beside it"
    return None


def _asks(split_size):
    return "split_size (%d bytes) keeps" % split_size if split_size else "without split_size the module keeps"


def lay_out_again(path: str, split_size: int | None, expected_sha256: str) -> SplitTarget | None:
    """The archive at path copied into a SplitTarget laid out for split_size, its bytes checked
    against expected_sha256 (what was verified of it); the caller commits it or aborts it. None
    when the whole file stays and only the parts beside it must go (remove_files(all_parts(path)))."""
    size = archive_stat(path).st_size
    if not plan(size, split_size) and not read_from_parts(path):
        return None
    check_free_space(os.path.dirname(os.path.abspath(path)), size, "the archive laid out again")
    target = SplitTarget(path, split_size)
    try:
        digest = hashlib.sha256()
        with OpenedArchive(path) as opened:
            for chunk in read_chunks(opened.reader):
                digest.update(chunk)
                target.write(chunk)
        if digest.hexdigest() != expected_sha256:
            raise ChecksumMismatch("%s has sha256 %s, not the %s it was verified or recorded with: it changed or is another "
                                   "archive; it was not laid out again."
                                   % (path, digest.hexdigest(), expected_sha256))
        target.sync()
    except OSError as exc:
        target.abort()
        raise os_error(exc, path, "laying out")
    except BaseException:
        target.abort()
        raise
    return target
