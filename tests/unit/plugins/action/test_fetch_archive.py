# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest
from action_fakes import FakeConnection, make_action
from ansible.errors import AnsibleActionFail, AnsibleError
from local_host import LocalHost, local_action

from ansible_collections.airgap.docker.plugins.action import fetch_archive
from ansible_collections.airgap.docker.plugins.action.fetch_archive import ActionModule
from ansible_collections.airgap.docker.plugins.module_utils import verified_memo
from ansible_collections.airgap.docker.plugins.plugin_utils import progress

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


# Resuming, on a host that is this machine -----------------------------------------------------


@pytest.fixture
def source(tmp_path):
    data = os.urandom(100 * 1024 + 123)
    (tmp_path / "host").mkdir()
    path = tmp_path / "host" / "app.tar.zst"
    path.write_bytes(data)
    bundle_dir = tmp_path / "bundle"
    return SimpleNamespace(path=str(path), data=data, bundle=bundle_dir, dest=bundle_dir / "images" / "app.tar.zst")


def fetch_from(source, host):
    given = args(source.bundle, data=source.data, src=source.path)
    return local_action(ActionModule, given, host).run(task_vars={"inventory_hostname": "host1"})


def partial_path(source):
    return str(source.dest) + ".%s.partial" % hashlib.sha256(source.data).hexdigest()[:16]


def start_partial(source, data):
    source.dest.parent.mkdir(parents=True, exist_ok=True)
    with open(partial_path(source), "wb") as handle:
        handle.write(data)


def test_a_cut_fetch_keeps_its_partial_and_the_next_fetches_only_the_rest(small_blocks, source):
    host = LocalHost()
    host.cut_after = 60 * 1024
    with pytest.raises(AnsibleError, match="what arrived is kept for the next run to resume from"):
        fetch_from(source, host)
    assert os.path.getsize(partial_path(source)) == 60 * 1024
    again = LocalHost()
    result = fetch_from(source, again)
    assert result["resumed_from"] == 60 * 1024 and result["bytes"] == len(source.data) - 60 * 1024
    assert again.moved == len(source.data) - 60 * 1024
    # the rest came in pieces of at most a chunk, through Ansible's remote temporary directory, which is gone
    assert [size for _kind, _src, _dest, size in again.transfers] == [32768, len(source.data) - 60 * 1024 - 32768]
    assert len(again.made_tmp) == 1 and again.left_in_tmp == []
    assert source.dest.read_bytes() == source.data
    assert stat.S_IMODE(os.stat(source.dest).st_mode) == 0o600
    assert partials(source.dest.parent) == []


def test_a_partial_whose_first_block_differs_is_fetched_again_whole(small_blocks, source):
    damaged = bytearray(source.data[:60 * 1024])
    damaged[5] ^= 0xFF
    start_partial(source, bytes(damaged))
    host = LocalHost()
    result = fetch_from(source, host)
    assert result["resumed_from"] == 0 and host.moved == len(source.data)
    assert source.dest.read_bytes() == source.data


def test_a_hole_of_zeros_is_cut_back_to_the_last_good_block(small_blocks, source):
    data = source.data
    start_partial(source, data[:32 * 1024] + bytes(8 * 1024) + data[40 * 1024:44 * 1024])
    host = LocalHost()
    result = fetch_from(source, host)
    assert result["resumed_from"] == 32 * 1024 and host.moved == len(data) - 32 * 1024
    assert source.dest.read_bytes() == data


def test_a_complete_partial_is_checked_and_placed_without_a_transfer(small_blocks, source):
    start_partial(source, source.data)
    host = LocalHost()
    result = fetch_from(source, host)
    assert result["bytes"] == 0 and result["resumed_from"] == len(source.data) and host.transfers == []
    assert source.dest.read_bytes() == source.data


def test_a_source_that_changed_since_the_partial_was_started_is_not_kept(small_blocks, source):
    start_partial(source, source.data[:50 * 1024])
    with open(source.path, "r+b") as handle:  # the end of the archive on the host differs from what its sha256 says
        handle.seek(90 * 1024)
        handle.write(b"changed")
    with pytest.raises(AnsibleActionFail, match="changed on the source or in transit; nothing was kept"):
        fetch_from(source, LocalHost())
    assert not source.dest.exists() and partials(source.dest.parent) == []


@pytest.mark.parametrize("kind", ["symlink", "fifo", "hardlink"])
def test_something_planted_under_the_partial_name_is_refused(small_blocks, source, tmp_path, kind):
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep me")
    source.dest.parent.mkdir(parents=True)
    if kind == "symlink":
        os.symlink(victim, partial_path(source))
    elif kind == "fifo":
        os.mkfifo(partial_path(source))  # opening it must not wait for a writer
    else:
        os.link(victim, partial_path(source))
    host = LocalHost()
    with pytest.raises(AnsibleActionFail, match=r"\.partial is not a regular file.*; remove it\.$"):
        fetch_from(source, host)
    assert victim.read_bytes() == b"keep me" and host.transfers == []


def test_partials_of_other_content_go_once_the_copy_is_in_place(small_blocks, source):
    source.dest.parent.mkdir(parents=True)
    other = str(source.dest) + ".0123456789abcdef.partial"
    Path(other).write_bytes(b"an older archive's")
    unrelated = str(source.dest) + ".notes"
    Path(unrelated).write_bytes(b"not ours")
    fetch_from(source, LocalHost())
    assert not os.path.exists(other) and os.path.exists(unrelated)


def test_an_archive_the_bundle_holds_as_parts_is_not_fetched(tmp_path, monkeypatch):
    seen = []

    def held(cache, bundle_dir, relative, sha256, size):
        seen.append((bundle_dir, relative, sha256, size))
        return True

    monkeypatch.setattr(fetch_archive, "held_as_parts", held)
    bundle_dir = tmp_path / "bundle"
    result = fetch(bundle_dir, FakeConnection({SRC: DATA}, fail_transfers=True))
    assert result["changed"] is False and result["bytes"] == 0
    assert seen == [(str(bundle_dir), "images/app.tar.zst", hashlib.sha256(DATA).hexdigest(), len(DATA))]


@pytest.mark.parametrize("verbosity", [0, 1])
def test_progress_lines_appear_at_v_only(small_blocks, source, monkeypatch, verbosity):
    lines = []
    monkeypatch.setattr(progress, "display", SimpleNamespace(verbosity=verbosity, v=lambda msg, host=None: lines.append((host, msg))))
    fetch_from(source, LocalHost())
    if verbosity == 0:
        assert lines == []
    else:
        assert [host for host, _msg in lines] == ["host1", "host1"]
        assert lines[0][1] == "fetch_archive %s: 100.1 KiB to move of 100.1 KiB" % source.path
        assert lines[1][1].startswith("fetch_archive %s: done, 100.1 KiB moved in " % source.path)
