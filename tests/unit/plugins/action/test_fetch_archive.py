# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import hashlib
import os
import stat

import pytest
from action_fakes import FakeConnection, make_action
from ansible.errors import AnsibleActionFail, AnsibleError

from ansible_collections.airgap.docker.plugins.action.fetch_archive import ActionModule
from ansible_collections.airgap.docker.plugins.module_utils import verified_memo

SRC = "/srv/transfer/app.tar.zst"
DATA = b"an archive" * 1000


def args(bundle_dir, data=DATA, **overrides):
    given = {"src": SRC, "bundle": str(bundle_dir), "path": "images/app.tar.zst", "sha256": hashlib.sha256(data).hexdigest(),
             "size": len(data)}
    given.update(overrides)
    return given


def fetch(bundle_dir, connection=None, check_mode=False, **overrides):
    connection = connection or FakeConnection({SRC: DATA})
    return make_action(ActionModule, args(bundle_dir, **overrides), connection, check_mode=check_mode).run(task_vars={})


def partials(directory):
    return [name for name in os.listdir(directory) if name.endswith(".partial")]


def test_fetch_copies_the_archive_into_the_bundle_privately(tmp_path):
    bundle_dir = tmp_path / "bundle"
    result = fetch(bundle_dir)
    dest = bundle_dir / "images" / "app.tar.zst"
    assert result["changed"] is True and result["dest"] == str(dest) and result["bytes"] == len(DATA)
    assert dest.read_bytes() == DATA
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o600
    assert partials(bundle_dir / "images") == []


def test_a_second_fetch_of_the_same_archive_copies_nothing_nor_hashes_it(tmp_path, monkeypatch):
    bundle_dir = tmp_path / "bundle"
    fetch(bundle_dir)
    monkeypatch.setattr(verified_memo, "hash_open_file", lambda handle: pytest.fail("hashed again"))
    connection = FakeConnection({SRC: DATA}, fail_transfers=True)
    result = fetch(bundle_dir, connection)
    assert result["changed"] is False and result["bytes"] == 0


def test_a_copy_that_arrives_damaged_is_not_kept(tmp_path):
    bundle_dir = tmp_path / "bundle"
    connection = FakeConnection({SRC: DATA[:-1] + b"X"})
    with pytest.raises(AnsibleActionFail, match="changed on the source or in transit; nothing was kept"):
        fetch(bundle_dir, connection)
    assert not (bundle_dir / "images" / "app.tar.zst").exists()
    assert partials(bundle_dir / "images") == []


def test_a_damaged_copy_leaves_the_previous_one_in_place(tmp_path):
    bundle_dir = tmp_path / "bundle"
    fetch(bundle_dir)
    with pytest.raises(AnsibleActionFail, match="nothing was kept"):
        fetch(bundle_dir, FakeConnection({SRC: b"other"}), sha256="ab" * 32, size=5)
    assert (bundle_dir / "images" / "app.tar.zst").read_bytes() == DATA


def test_a_failed_transfer_names_the_source_and_leaves_nothing(tmp_path):
    bundle_dir = tmp_path / "bundle"
    with pytest.raises(AnsibleError, match="Cannot copy %s from host1" % SRC):
        fetch(bundle_dir, FakeConnection({}))
    assert partials(bundle_dir / "images") == []


def test_check_mode_says_what_it_would_copy_and_writes_nothing(tmp_path):
    bundle_dir = tmp_path / "bundle"
    result = fetch(bundle_dir, check_mode=True)
    assert result["changed"] is True and result["msg"].startswith("would copy %s" % SRC)
    assert not bundle_dir.exists()


@pytest.mark.parametrize("path", ["../outside.tar", "/etc/passwd", "images/../../x.tar", "other/app.tar"])
def test_a_path_outside_the_bundle_is_refused(tmp_path, path):
    with pytest.raises(AnsibleActionFail, match="is not a path inside a bundle"):
        fetch(tmp_path / "bundle", path=path)


def test_a_malformed_checksum_is_refused(tmp_path):
    with pytest.raises(AnsibleActionFail, match="is not a SHA-256 checksum"):
        fetch(tmp_path / "bundle", sha256="abc")
