# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fakes to drive the action plugins' run(): a connection whose remote host is a dict of files, and
a shell that understands the few commands the plugins send (df, mv, rm)."""

from __future__ import annotations

import shlex
from types import SimpleNamespace

from ansible.errors import AnsibleError


class FakeConnection:
    """The remote host's files as {path: bytes}; fetch_file and put_file copy whole files."""

    def __init__(self, remote=None, free_kib=1 << 30, fail_transfers=False):
        self._shell = SimpleNamespace(tmpdir="/remote/tmp")
        self.remote = dict(remote or {})
        self.free_kib = free_kib
        self.fail_transfers = fail_transfers
        self.commands = []

    def fetch_file(self, src, dest):
        if self.fail_transfers or src not in self.remote:
            raise AnsibleError("file not found: %s" % src)
        with open(dest, "wb") as handle:
            handle.write(self.remote[src])

    def put_file(self, local, remote):
        if self.fail_transfers:
            raise AnsibleError("connection lost")
        with open(local, "rb") as handle:
            self.remote[remote] = handle.read()

    def execute(self, command):
        """What the host's shell does with a command the plugins send: {rc, stdout, stderr}."""
        self.commands.append(command)
        words = shlex.split(command.replace("&&", " && "))
        if words[0] == "df":
            df = "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sda1 99999999 1 %d 1%% /\n" % self.free_kib
            return {"rc": 0, "stdout": df, "stderr": ""}
        if words[0] == "rm":
            for path in words[2:]:
                self.remote.pop(path, None)
            return {"rc": 0, "stdout": "", "stderr": ""}
        while words and words[0] == "mv":
            _mv, _force, src, dest = words[:4]
            self.remote[dest] = self.remote.pop(src)
            words = words[5:]
        return {"rc": 0, "stdout": "", "stderr": ""}


def make_action(action_class, args, connection, check_mode=False):
    """An action plugin instance as the task executor makes it, with the fakes in place."""
    task = SimpleNamespace(args=dict(args), check_mode=check_mode, async_val=0, action=action_class.__module__)
    action = action_class(task, connection, SimpleNamespace(remote_addr="host1"), loader=None, templar=None)
    action._low_level_execute_command = lambda cmd, sudoable=True, **kwargs: connection.execute(cmd)
    return action
