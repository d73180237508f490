# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest
from action_fakes import FakeConnection, make_action
from ansible.errors import AnsibleActionFail, AnsibleError

from ansible_collections.airgap.docker.plugins.action.push_archive import ActionModule

DEST = "/srv/transfer/app.tar.zst"
ARCHIVE = b"an archive" * 100
SIDECAR = b'{"schema": 1}\n'


@pytest.fixture
def bundle_dir(tmp_path):
    images = tmp_path / "bundle" / "images"
    images.mkdir(parents=True)
    (images / "app.tar.zst").write_bytes(ARCHIVE)
    (images / "app.tar.zst.airgap.json").write_bytes(SIDECAR)
    return tmp_path / "bundle"


def push(bundle_dir, connection, check_mode=False, **overrides):
    given = {"bundle": str(bundle_dir), "path": "images/app.tar.zst", "dest": DEST}
    given.update(overrides)
    return make_action(ActionModule, given, connection, check_mode=check_mode).run(task_vars={})


def test_push_copies_the_archive_then_its_sidecar_into_place(bundle_dir):
    connection = FakeConnection()
    result = push(bundle_dir, connection)
    assert result["changed"] is True and result["bytes"] == len(ARCHIVE) + len(SIDECAR)
    assert connection.remote == {DEST: ARCHIVE, DEST + ".airgap.json": SIDECAR}
    df, moves = connection.commands
    assert df == "df -Pk /srv/transfer"
    # under a name of their own, then renamed: the archive first, then the sidecar that describes it
    assert moves.index("mv -f %s." % DEST) < moves.index("mv -f %s.airgap.json." % DEST)


def test_check_mode_reports_the_size_and_copies_nothing(bundle_dir):
    connection = FakeConnection()
    result = push(bundle_dir, connection, check_mode=True)
    assert result["changed"] is True and result["bytes"] == len(ARCHIVE) + len(SIDECAR)
    assert connection.remote == {} and connection.commands == []


def test_check_mode_before_the_archive_reached_the_controller(bundle_dir):
    (bundle_dir / "images" / "app.tar.zst").unlink()
    result = push(bundle_dir, FakeConnection(), check_mode=True)
    assert result["bytes"] is None and "size not known yet" in result["msg"]


def test_a_missing_sidecar_is_refused_before_anything_is_copied(bundle_dir):
    (bundle_dir / "images" / "app.tar.zst.airgap.json").unlink()
    connection = FakeConnection()
    with pytest.raises(AnsibleActionFail, match=r"app\.tar\.zst\.airgap\.json is missing on the controller"):
        push(bundle_dir, connection)
    assert connection.remote == {}


def test_a_relative_destination_is_refused(bundle_dir):
    with pytest.raises(AnsibleActionFail, match="dest must be an absolute path"):
        push(bundle_dir, FakeConnection(), dest="transfer/app.tar.zst")


def test_not_enough_room_on_the_host_copies_nothing(bundle_dir):
    connection = FakeConnection(free_kib=0)
    with pytest.raises(AnsibleActionFail, match="Not enough free space in /srv/transfer on host1"):
        push(bundle_dir, connection)
    assert connection.remote == {}


def test_a_failed_copy_removes_its_partial_files(bundle_dir):
    connection = FakeConnection()
    original_put = connection.put_file

    def put_then_fail(local, remote):
        original_put(local, remote)
        if remote.startswith(DEST + ".airgap.json"):
            raise AnsibleError("connection lost")

    connection.put_file = put_then_fail
    with pytest.raises(AnsibleError, match="Its partial copy was removed"):
        push(bundle_dir, connection)
    assert connection.remote == {}
    assert connection.commands[-1].startswith("rm -f ")
