# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the archive transfer action plugins share.

Archives move with the connection's own file transfer (sftp or scp for ssh), which streams
from file to file. Ansible's fetch falls back to slurp (the whole file, base64, in memory)
under become, and copy checksums the controller file once per host; neither suits archives
of gigabytes sent to hundreds of hosts.

A transfer cut off (a dropped link, a killed run) leaves a partial copy under a name that says what
it is part of; the next run keeps the blocks of it that match (resume.py) and moves only the rest.
"""

from __future__ import annotations

import shlex

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.airgap.docker.plugins.module_utils.errors import AirgapError
from ansible_collections.airgap.docker.plugins.plugin_utils import remote_shell, resume


class TransferAction(ActionBase):
    """An action plugin that validates its arguments and turns our errors into a failed result."""

    TRANSFERS_FILES = True
    _requires_connection = True
    ARGUMENT_SPEC = {}

    def run(self, tmp=None, task_vars=None):
        self.task_vars = task_vars or {}
        result = super().run(tmp, self.task_vars)
        _validation, args = self.validate_argument_spec(argument_spec=self.ARGUMENT_SPEC)
        try:
            result.update(self.transfer(args))
        except AirgapError as exc:
            raise AnsibleActionFail(exc.msg)
        return result

    def transfer(self, args):
        raise NotImplementedError

    def remote_command(self, command, what):
        """Run a shell command on the remote host as the login user; fail with `what` in the message."""
        res = self._low_level_execute_command(command, sudoable=False)
        if res.get("rc") != 0:
            raise AnsibleActionFail("%s failed on %s: %s" % (what, self._host_name(), (res.get("stderr") or res.get("stdout") or "").strip()))
        return res.get("stdout") or ""

    def remote_free_bytes(self, directory):
        out = self.remote_command("df -Pk %s" % shlex.quote(directory), "Checking free space in %s" % directory)
        lines = out.strip().splitlines()
        try:
            return int(lines[-1].split()[3]) * 1024
        except (IndexError, ValueError):
            return None

    def kept_prefix(self, remote_path, remote_end, local_fd, limit):
        """Bytes from the start that the remote file and the local file (open as `local_fd`) have in
        common, in whole blocks of resume.py, within the first `limit` bytes. A remote host that cannot
        hash (no sha256sum) keeps nothing: what cannot be checked is sent again."""
        spans = resume.blocks(limit, remote_end)
        if not spans:
            return 0
        res = self._low_level_execute_command(remote_shell.hash_blocks(remote_path, spans), sudoable=False)
        if res.get("rc") != 0:
            return 0
        theirs = remote_shell.parse_digests(res.get("stdout") or "")
        return resume.matching_prefix(spans, resume.local_digests(local_fd, spans), theirs)

    def host_label(self):
        """The inventory host's name: two inventory hosts may be one machine, which its address would not tell."""
        return getattr(self, "task_vars", {}).get("inventory_hostname") or self._host_name()

    def _host_name(self):
        return self._play_context.remote_addr or "the remote host"
