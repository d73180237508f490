# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Copy an archive from the remote host into a bundle on the controller, verified, streamed, resuming
what an earlier copy left half-way."""

from __future__ import annotations

import os
import posixpath

from ansible.errors import AnsibleError

from ansible_collections.airgap.docker.plugins.module_utils import bundle
from ansible_collections.airgap.docker.plugins.module_utils.archive_parts import held_as_parts
from ansible_collections.airgap.docker.plugins.module_utils.atomic_file import remove_dead_partials
from ansible_collections.airgap.docker.plugins.module_utils.checksums import hash_open_file, parse_sha256
from ansible_collections.airgap.docker.plugins.module_utils.directory_lock import DirectoryLock
from ansible_collections.airgap.docker.plugins.module_utils.disk_space import human_size
from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError, ChecksumMismatch
from ansible_collections.airgap.docker.plugins.module_utils.verified_memo import VerifiedCache
from ansible_collections.airgap.docker.plugins.plugin_utils import remote_shell, resume
from ansible_collections.airgap.docker.plugins.plugin_utils.local_partial import LocalPartial, remove_quietly, same_file, stale_partials
from ansible_collections.airgap.docker.plugins.plugin_utils.progress import Progress
from ansible_collections.airgap.docker.plugins.plugin_utils.transfer import TransferAction


class ActionModule(TransferAction):
    ARGUMENT_SPEC = dict(
        src=dict(type="str", required=True),
        bundle=dict(type="path", required=True),
        path=dict(type="str", required=True),
        sha256=dict(type="str", required=True),
        size=dict(type="int", required=True),
        lock_timeout=dict(type="int", default=600),
    )

    def transfer(self, args):
        relative = bundle.safe_relative_path(args["path"])
        dest = bundle.bundle_file(args["bundle"], relative)
        expected = parse_sha256(args["sha256"])
        check_mode = self._task.check_mode
        if not check_mode:
            bundle.ensure_directories(args["bundle"])
        # Another run that writes this bundle (a relay from the same source, a pack) is waited for:
        # its manifest could otherwise remove what this copy is about to deliver.
        with DirectoryLock(args["bundle"], args["lock_timeout"], shared=check_mode, what="the bundle"):
            cache = VerifiedCache(args["bundle"])
            if self._reusable(cache, args["bundle"], relative, dest, expected, args["size"]):
                if not check_mode:
                    cache.save()
                return {"changed": False, "dest": dest, "bytes": 0, "msg": "the controller's copy %s matches the source's checksum" % dest}
            if check_mode:
                return {"changed": True, "dest": dest, "bytes": args["size"],
                        "msg": "would copy %s (%s) from the source" % (args["src"], human_size(args["size"]))}
            kept = self._fetch_verified(args["src"], dest, expected, args["size"], lambda stat: cache.remember(relative, stat, expected))
            cache.save()
        moved = args["size"] - kept
        return {"changed": True, "dest": dest, "bytes": moved, "resumed_from": kept,
                "msg": "copied %s (%s) from the source%s" % (args["src"], human_size(moved), ", resumed from %s" % human_size(kept) if kept else "")}

    @staticmethod
    def _reusable(cache, bundle_dir, relative, dest, expected, size):
        try:
            if os.stat(dest).st_size != size:
                return False
        except FileNotFoundError:
            # A bundle may hold the archive as numbered parts, which the hosts join (push_archive).
            return held_as_parts(cache, bundle_dir, relative, expected, size)
        return cache.sha256(relative, dest)[0] == expected

    def _fetch_verified(self, src, dest, expected, size, remember):
        """Copy into the partial copy named after the content (resuming what it already holds), check
        the whole through the descriptor of that very file, and rename it into place."""
        remove_dead_partials(dest)  # the randomly named temporary files of earlier versions
        partial = LocalPartial(dest, expected)
        try:
            found = partial.size()
            kept = self.kept_prefix(src, size, partial.fd, min(found, size)) if found else 0
            if kept != found:
                partial.truncate(kept)
            with Progress("fetch_archive %s" % src, size, lambda: partial.size() + self._chunk_size(), start=kept, host=self.host_label()):
                self._fill(src, partial, kept, size)
            stat = self._check(partial, src, expected, size)
            placed = partial.place()
        finally:
            partial.close()
        for stale in stale_partials(dest, partial.path):
            remove_quietly(stale)
        # The rename sets the inode change time: remember the file as it is now, if that is all that changed.
        if (placed.st_ino, placed.st_size, placed.st_mtime_ns) == (stat.st_ino, stat.st_size, stat.st_mtime_ns):
            remember(placed)
        return kept

    def _fill(self, src, partial, kept, size):
        try:
            if kept == 0:
                self._connection.fetch_file(src, partial.path)
                partial.check_name()
            elif kept < size:
                self._fetch_rest(src, partial, kept, size)
        except AnsibleError as exc:
            raise AnsibleError("Cannot copy %s from %s: %s. The archive must be readable by the user Ansible logs in as; "
                               "what arrived is kept for the next run to resume from." % (src, self._host_name(), exc.message))

    def _fetch_rest(self, src, partial, kept, size):
        """The rest of the archive, CHUNK bytes at a time: cut out on the host into Ansible's temporary
        directory with dd, fetched beside the partial copy, appended to it."""
        # Made when the task started (TRANSFERS_FILES) and removed when it ends, by the task executor's cleanup().
        remote_tmp = self._connection._shell.tmpdir or self._make_tmp_path()
        remote_chunk = posixpath.join(remote_tmp, "chunk")
        try:
            for offset, length in resume.chunks(kept, size):
                self.remote_command(remote_shell.read_chunk(src, remote_chunk, offset, length), "Reading %s" % src)
                self._chunk_fd = partial.new_chunk()
                try:
                    self._connection.fetch_file(remote_chunk, partial.chunk_path())
                    if not same_file(partial.chunk_path(), self._chunk_fd):
                        raise ArchiveError("%s was replaced by another file while it was written; nothing was kept." % partial.chunk_path())
                    partial.append(self._chunk_fd, length)
                finally:
                    fd, self._chunk_fd = self._chunk_fd, None  # the progress thread stops looking at it first
                    os.close(fd)
                    remove_quietly(partial.chunk_path())
        finally:
            self._remove_remote(remote_chunk)

    def _remove_remote(self, path):
        try:
            self._low_level_execute_command("rm -f -- %s" % remote_shell.q(path), sudoable=False)
        except AnsibleError:
            pass  # the connection is gone; Ansible's temporary directory goes with the task's cleanup, or stays with the host

    def _chunk_size(self):
        fd = getattr(self, "_chunk_fd", None)
        return 0 if fd is None else os.fstat(fd).st_size

    @staticmethod
    def _check(partial, src, expected, size):
        with os.fdopen(os.dup(partial.fd), "rb") as handle:
            digest, got, checked = hash_open_file(handle)
        if (digest, got) != (expected, size):
            partial.discard()
            raise ChecksumMismatch("%s arrived as %d bytes with sha256 %s; the source recorded %d bytes with sha256 %s. "
                                   "The archive changed on the source or in transit; nothing was kept." % (src, got, digest, size, expected))
        if checked is None:
            raise ChecksumMismatch("The copy of %s changed on the controller while it was checked; nothing was kept." % src)
        return checked
