# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the archive managers do with an archive held as one file or as numbered parts: the
`split_size` option, file attributes and the memo across all parts, removal, and laying an
archive that is current out again when split_size asks for other files.

SplitFiles is mixed into a module_support.ArchiveManager (listed before it), whose methods of the
same names see only the file at `path`. It imports nothing of Ansible: it calls the manager's module.
"""

from __future__ import annotations

import os

from ansible_collections.airgap.docker.plugins.module_utils import sidecar
from ansible_collections.airgap.docker.plugins.module_utils.archive_files import archive_files, archive_stat, resolve
from ansible_collections.airgap.docker.plugins.module_utils.archive_parts import all_parts, parse_size, remove_files
from ansible_collections.airgap.docker.plugins.module_utils.archive_stream import commit_archive
from ansible_collections.airgap.docker.plugins.module_utils.atomic_file import fsync_directory
from ansible_collections.airgap.docker.plugins.module_utils.errors import os_error
from ansible_collections.airgap.docker.plugins.module_utils.split_target import lay_out_again, layout_problem
from ansible_collections.airgap.docker.plugins.module_utils.verified_memo import file_identity


def _same_content_version(a, b) -> bool:
    """The same files with the same bytes (a chmod or chown may have changed their ctime since)."""
    return (a.st_dev, a.st_ino, a.st_size, a.st_mtime_ns) == (b.st_dev, b.st_ino, b.st_size, b.st_mtime_ns)


class SplitFiles:
    """Mixed into an ArchiveManager (before it in the bases)."""

    _split_size = None  # set by prepare_files

    def prepare_files(self) -> None:
        """Called from the manager's __init__: a split_size that is no size fails before any work, and
        a reading state may name the first part (`x.part001`): the archive is `x`, its sidecar `x.airgap.json`."""
        self._split_size = parse_size(self.params.get("split_size"))
        if self.params["state"] != self.writes_state:
            self.path = resolve(self.path)

    @property
    def split_size(self) -> int | None:
        """The split_size option in bytes, or None: one file whatever the archive's size."""
        return self._split_size

    def layout_problem(self) -> str | None:
        """Why the archive's files are not the layout split_size asks for, or None."""
        return layout_problem(self.path, self.split_size)

    def apply_file_attributes(self, changed):
        """Mode, owner and group on every file of the archive (each part) and on its sidecar."""
        files = archive_files(self.path)
        if self.params["state"] != self.writes_state or not files:
            return changed
        before = archive_stat(self.path)
        for path in files + [sidecar.sidecar_path(self.path)]:
            if os.path.exists(path):
                file_args = self.module.load_file_common_arguments(self.params, path=path)
                changed = self.module.set_fs_attributes_if_different(file_args, changed)
        self._carry_memo(before)
        return changed

    def _carry_memo(self, before) -> None:
        """A chmod or chown changes the files' ctime: carry the memo over, the content being untouched."""
        after = archive_stat(self.path)
        if before is None or after is None or file_identity(after) == file_identity(before):
            return
        document = self.recall_verified(self.path, before) if _same_content_version(after, before) else None
        if document is not None:
            self.remember_verified(self.path, document, after)

    def remember_if_unchanged(self, document: dict, known) -> None:
        """Remember document for the files whose stat was `known`, while they are still those files."""
        now = archive_stat(self.path)
        if now is None or not _same_content_version(now, known):
            return
        if file_identity(now) != file_identity(known) or self.recall_verified(self.path, now) != document:
            self.remember_verified(self.path, document, now)

    def lay_out(self, document: dict) -> dict:
        """Write the current archive (described by `document`, what this host verified of it) again
        in the layout split_size asks for, from its own bytes, checked against the document's
        sha256; its sidecar follows. Returns the document of the files as they are now."""
        target = lay_out_again(self.path, self.split_size, document["archive"]["sha256"])
        if target is None:  # the whole file stays: only the parts of an earlier split go
            try:
                remove_files(all_parts(self.path))
                stat = archive_stat(self.path)
                new = self._laid_out_document(document, stat)
                new["archive"].pop("parts", None)
                sidecar.write(self.path, new)
                fsync_directory(os.path.dirname(os.path.abspath(self.path)))
            except OSError as exc:
                raise os_error(exc, self.path, "laying out")
        else:
            holder = {}

            def make_sidecar(files_stat):
                holder["document"] = self._laid_out_document(document, files_stat)
                return holder["document"]

            stat = commit_archive(target, self.path, make_sidecar)
            new = holder["document"]
        self.trusted_document = new
        self.add_stats({"archive_bytes_read": stat.st_size if target else 0,
                        "archive_bytes_written": stat.st_size if target else 0})
        self.apply_file_attributes(True)
        self.remember_if_unchanged(new, stat)
        return new

    def _laid_out_document(self, document: dict, stat) -> dict:
        """The sidecar of the new files: the one on disk when it agrees with what was verified (it
        may say more: the engine, the request), else the verified document; with the files' facts."""
        on_disk = sidecar.read_sidecar(self.path, kind=self.sidecar_kind)
        base = on_disk if on_disk is not None and sidecar.describes_same_content(on_disk, document) else document
        return dict(base, archive=dict(base["archive"], size=stat.st_size, mtime_ns=stat.st_mtime_ns))
