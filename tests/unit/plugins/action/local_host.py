# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A managed host that is this machine: its files are local files, its commands run in sh, so that the
transfer plugins' shell commands (dd, sha256sum, truncate, tee) really run. Transfers can be cut off
after a number of bytes, as a dropped connection cuts them, and every byte moved is counted."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from types import SimpleNamespace

from action_fakes import make_action
from ansible.errors import AnsibleError


class LocalHost:
    def __init__(self):
        self._shell = SimpleNamespace(tmpdir=None)
        self.commands = []
        self.moved = 0  # bytes written by put_file and fetch_file
        self.transfers = []  # (kind, source, target, bytes)
        self.cut_after = None  # the next transfer stops after this many bytes and fails
        self.alter = None  # alter(target, data) -> data: what a transfer writes instead
        self.made_tmp = []  # Ansible's remote temporary directories made on it

    def put_file(self, local, remote):
        self._copy("put", local, remote)

    def fetch_file(self, remote, local):
        self._copy("fetch", remote, local)

    def _copy(self, kind, source, target):
        try:
            with open(source, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            raise AnsibleError("file not found: %s (%s)" % (source, exc))
        if self.alter is not None:
            data = self.alter(target, data)
        cut, self.cut_after = self.cut_after, None
        written = data if cut is None else data[:cut]
        with open(target, "wb") as handle:  # as sftp does: the same file, truncated, written from the start
            handle.write(written)
        self.moved += len(written)
        self.transfers.append((kind, source, target, len(written)))
        if cut is not None:
            raise AnsibleError("connection lost")

    def execute(self, command):
        self.commands.append(command)
        run = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=False)
        return {"rc": run.returncode, "stdout": run.stdout, "stderr": run.stderr}


def local_action(action_class, args, host, check_mode=False):
    """The action plugin over `host`, with Ansible's remote temporary directory as a local one, made
    when the action starts and removed when it ends (the task executor's cleanup())."""
    action = make_action(action_class, args, host, check_mode=check_mode)

    def make_tmp(remote_user=None):
        host._shell.tmpdir = tempfile.mkdtemp(prefix="ansible-tmp-")
        host.made_tmp.append(host._shell.tmpdir)
        return host._shell.tmpdir

    def remove_tmp(path=None, force=False):
        host.left_in_tmp = sorted(os.listdir(path or host._shell.tmpdir))
        shutil.rmtree(path or host._shell.tmpdir, ignore_errors=True)
        host._shell.tmpdir = None

    action._make_tmp_path = make_tmp
    action._remove_tmp_path = remove_tmp
    run = action.run

    def run_then_clean_up(*args, **kwargs):
        try:
            return run(*args, **kwargs)
        finally:
            action.cleanup()

    action.run = run_then_clean_up
    return action
