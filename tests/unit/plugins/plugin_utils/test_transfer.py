# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from types import SimpleNamespace

import pytest
from ansible.errors import AnsibleActionFail

from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError
from ansible_collections.airgap.docker.plugins.plugin_utils.transfer import TransferAction


class Echo(TransferAction):
    """A transfer that returns its arguments, or raises what it is given."""

    ARGUMENT_SPEC = dict(name=dict(type="str", required=True), count=dict(type="int", default=1))

    def transfer(self, args):
        if args["name"] == "broken":
            raise ArchiveError("The archive is broken.")
        return {"changed": False, "args": args}


def action(args=None, replies=(), remote_addr="host1"):
    """An Echo whose remote shell answers each command with the next of `replies` ({rc, stdout, stderr})."""
    task = SimpleNamespace(args=dict(args or {"name": "x"}), check_mode=False, async_val=0, action="echo")
    connection = SimpleNamespace(_shell=SimpleNamespace(tmpdir="/remote/tmp"))
    plugin = Echo(task, connection, SimpleNamespace(remote_addr=remote_addr), loader=None, templar=None)
    answers = list(replies)
    plugin.sent = []

    def execute(cmd, sudoable=True, **kwargs):
        plugin.sent.append((cmd, sudoable))
        return answers.pop(0)

    plugin._low_level_execute_command = execute
    return plugin


def test_run_returns_the_transfer_result_with_validated_arguments():
    result = action({"name": "x", "count": "3"}).run(task_vars={})
    assert result["changed"] is False and result["args"] == {"name": "x", "count": 3}


def test_run_turns_our_errors_into_a_failed_task():
    with pytest.raises(AnsibleActionFail, match=r"^The archive is broken\.$"):
        action({"name": "broken"}).run(task_vars={})


def test_run_refuses_arguments_that_do_not_fit_the_spec():
    with pytest.raises(AnsibleActionFail, match="name"):
        action({"count": 1}).run()


def test_remote_command_runs_as_the_login_user_and_returns_stdout():
    plugin = action(replies=[{"rc": 0, "stdout": "done\n", "stderr": ""}])
    assert plugin.remote_command("true", "Doing nothing") == "done\n"
    assert plugin.sent == [("true", False)]


@pytest.mark.parametrize("reply, detail", [({"rc": 1, "stdout": "", "stderr": "mv: denied\n"}, "mv: denied"),
                                           ({"rc": 2, "stdout": "only stdout\n"}, "only stdout"),
                                           ({"rc": None}, "")])
def test_a_failed_remote_command_fails_the_task_with_what_it_said(reply, detail):
    with pytest.raises(AnsibleActionFail) as caught:
        action(replies=[reply]).remote_command("mv a b", "Moving b into place")
    assert caught.value.message == ("Moving b into place failed on host1: %s" % detail).strip()


def test_remote_free_bytes_reads_the_available_column_of_df():
    out = "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sda1 1000 10 990 1% /srv\n"
    plugin = action(replies=[{"rc": 0, "stdout": out}])
    assert plugin.remote_free_bytes("/srv/my dir") == 990 * 1024
    assert plugin.sent == [("df -Pk '/srv/my dir'", False)]


@pytest.mark.parametrize("out", ["", "Filesystem\n", "Filesystem 1024-blocks Used Available\n/dev/sda1 1000 10 lots /srv\n"])
def test_remote_free_bytes_that_cannot_be_read_is_unknown(out):
    assert action(replies=[{"rc": 0, "stdout": out}]).remote_free_bytes("/srv") is None


def test_the_host_is_named_by_its_address_or_generically():
    assert action()._host_name() == "host1"
    assert action(remote_addr=None)._host_name() == "the remote host"
