# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Copy an archive and its sidecar from a bundle on the controller to the remote host, streamed."""

from __future__ import annotations

import os
import posixpath
import shlex
import uuid

from ansible.errors import AnsibleError

from ansible_collections.airgap.docker.plugins.module_utils import bundle
from ansible_collections.airgap.docker.plugins.module_utils.disk_space import human_size
from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError, SpaceError
from ansible_collections.airgap.docker.plugins.module_utils.sidecar import SUFFIX
from ansible_collections.airgap.docker.plugins.plugin_utils.transfer import TransferAction


class ActionModule(TransferAction):
    ARGUMENT_SPEC = dict(
        bundle=dict(type="path", required=True),
        path=dict(type="str", required=True),
        dest=dict(type="str", required=True),
    )

    def transfer(self, args):
        src = bundle.bundle_file(args["bundle"], args["path"])
        dest = args["dest"]
        if not posixpath.isabs(dest):
            raise ArchiveError("dest must be an absolute path on the remote host, not %r." % dest)
        files = [(src, dest), (src + SUFFIX, dest + SUFFIX)]
        missing = [local for local, _remote in files if not os.path.isfile(local)]
        if self._task.check_mode:
            # In check mode the archive may not have reached the controller yet.
            size = None if missing else sum(os.path.getsize(local) for local, _remote in files)
            return {"changed": True, "dest": dest, "bytes": size,
                    "msg": "would copy %s (%s)" % (args["path"], "size not known yet" if size is None else human_size(size))}
        if missing:
            raise ArchiveError("%s is missing on the controller." % missing[0])
        size = sum(os.path.getsize(local) for local, _remote in files)
        self._check_space(posixpath.dirname(dest), size)
        # A name of its own per copy: two inventory hosts may share a machine and a staging directory.
        suffix = ".%s.partial" % uuid.uuid4().hex[:12]
        try:
            for local, remote in files:
                self._connection.put_file(local, remote + suffix)
        except AnsibleError as exc:
            self._remove_partials(files, suffix)
            raise AnsibleError("Copying %s to %s failed: %s. Its partial copy was removed if the host could still be reached."
                               % (args["path"], dest, exc.message))
        # The archive first, then its sidecar: a sidecar never describes a file it was not written for.
        renames = " && ".join("mv -f %s %s" % (shlex.quote(r + suffix), shlex.quote(r)) for _local, r in files)
        self.remote_command(renames, "Moving %s into place" % dest)
        return {"changed": True, "dest": dest, "bytes": size, "msg": "copied %s (%s)" % (args["path"], human_size(size))}

    def _check_space(self, directory, size):
        free = self.remote_free_bytes(directory)
        if free is not None and free < size:
            raise SpaceError("Not enough free space in %s on %s for %s: %s free. Nothing was copied."
                             % (directory, self._host_name(), human_size(size), human_size(free)))

    def _remove_partials(self, files, suffix):
        try:
            self._low_level_execute_command("rm -f %s" % " ".join(shlex.quote(r + suffix) for _local, r in files), sudoable=False)
        except AnsibleError:
            pass  # the connection is gone; the next copy uses a new name and the host's cleanup is up to its operator
