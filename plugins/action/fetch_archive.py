# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Copy an archive from the remote host into a bundle on the controller, verified, streamed."""

from __future__ import annotations

import os
import tempfile

from ansible.errors import AnsibleError

from ansible_collections.airgap.docker.plugins.module_utils import bundle
from ansible_collections.airgap.docker.plugins.module_utils.errors import ChecksumMismatch
from ansible_collections.airgap.docker.plugins.module_utils.files import file_sha256, fsync_directory, human_size, parse_sha256
from ansible_collections.airgap.docker.plugins.plugin_utils.transfer import TransferAction


class ActionModule(TransferAction):
    ARGUMENT_SPEC = dict(
        src=dict(type="str", required=True),
        bundle=dict(type="path", required=True),
        path=dict(type="str", required=True),
        sha256=dict(type="str", required=True),
        size=dict(type="int", required=True),
    )

    def transfer(self, args):
        relative = bundle.safe_relative_path(args["path"])
        dest = bundle.bundle_file(args["bundle"], relative)
        expected = parse_sha256(args["sha256"])
        cache = bundle.VerifiedCache(args["bundle"])
        if self._reusable(cache, relative, dest, expected, args["size"]):
            if not self._task.check_mode:
                cache.save()
            return {"changed": False, "dest": dest, "bytes": 0, "msg": "the controller's copy %s matches the source's checksum" % dest}
        if self._task.check_mode:
            return {"changed": True, "dest": dest, "bytes": args["size"],
                    "msg": "would copy %s (%s) from the source" % (args["src"], human_size(args["size"]))}
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        self._fetch_verified(args["src"], dest, expected, args["size"])
        cache.remember(relative, dest, expected)
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

    def _fetch_verified(self, src, dest, expected, size):
        directory = os.path.dirname(dest)
        fd, partial = tempfile.mkstemp(prefix="." + os.path.basename(dest) + ".", suffix=".partial", dir=directory)
        os.close(fd)
        try:
            try:
                self._connection.fetch_file(src, partial)
            except AnsibleError as exc:
                raise AnsibleError("Cannot copy %s from %s: %s. The archive must be readable by the user Ansible logs in as."
                                   % (src, self._host_name(), exc.message))
            digest, got = file_sha256(partial)
            if (digest, got) != (expected, size):
                raise ChecksumMismatch("%s arrived as %d bytes with sha256 %s; the source recorded %d bytes with sha256 %s. "
                                       "The archive changed on the source or in transit; nothing was kept." % (src, got, digest, size, expected))
            with open(partial, "rb") as handle:
                os.fsync(handle.fileno())
            os.rename(partial, dest)
            fsync_directory(directory)
        finally:
            if os.path.exists(partial):
                os.unlink(partial)
