# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Copy an archive from the remote host into a bundle on the controller, verified, streamed."""

from __future__ import annotations

import os

from ansible.errors import AnsibleError

from ansible_collections.airgap.docker.plugins.module_utils import bundle
from ansible_collections.airgap.docker.plugins.module_utils.atomic_file import place_checked_copy
from ansible_collections.airgap.docker.plugins.module_utils.checksums import hash_open_file, parse_sha256
from ansible_collections.airgap.docker.plugins.module_utils.directory_lock import DirectoryLock
from ansible_collections.airgap.docker.plugins.module_utils.disk_space import human_size
from ansible_collections.airgap.docker.plugins.module_utils.errors import ChecksumMismatch
from ansible_collections.airgap.docker.plugins.module_utils.verified_memo import VerifiedCache
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
            if self._reusable(cache, relative, dest, expected, args["size"]):
                if not check_mode:
                    cache.save()
                return {"changed": False, "dest": dest, "bytes": 0, "msg": "the controller's copy %s matches the source's checksum" % dest}
            if check_mode:
                return {"changed": True, "dest": dest, "bytes": args["size"],
                        "msg": "would copy %s (%s) from the source" % (args["src"], human_size(args["size"]))}
            self._fetch_verified(args["src"], dest, expected, args["size"], lambda stat: cache.remember(relative, stat, expected))
            cache.save()
        return {"changed": True, "dest": dest, "bytes": args["size"], "msg": "copied %s (%s) from the source" % (args["src"], human_size(args["size"]))}

    @staticmethod
    def _reusable(cache, relative, dest, expected, size):
        try:
            if os.stat(dest).st_size != size:
                return False
        except FileNotFoundError:
            return False
        return cache.sha256(relative, dest)[0] == expected

    def _fetch_verified(self, src, dest, expected, size, remember):
        """Copy into a locked temporary file, check what arrived through a descriptor of that very file,
        and rename it into place (atomic_file.place_checked_copy)."""
        def fill(temp_path):
            try:
                self._connection.fetch_file(src, temp_path)
            except AnsibleError as exc:
                raise AnsibleError("Cannot copy %s from %s: %s. The archive must be readable by the user Ansible logs in as."
                                   % (src, self._host_name(), exc.message))

        def check(handle):
            digest, got, checked = hash_open_file(handle)
            if (digest, got) != (expected, size):
                raise ChecksumMismatch("%s arrived as %d bytes with sha256 %s; the source recorded %d bytes with sha256 %s. "
                                       "The archive changed on the source or in transit; nothing was kept." % (src, got, digest, size, expected))
            if checked is None:
                raise ChecksumMismatch("The copy of %s changed on the controller while it was checked; nothing was kept." % src)
            return checked

        checked, placed = place_checked_copy(dest, fill, check)
        # The rename sets the inode change time: remember the file as it is now, if that is all that changed.
        if (placed.st_ino, placed.st_size, placed.st_mtime_ns) == (checked.st_ino, checked.st_size, checked.st_mtime_ns):
            remember(placed)
