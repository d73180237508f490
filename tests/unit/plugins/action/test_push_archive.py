# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from action_fakes import FakeConnection, make_action
from ansible.errors import AnsibleActionFail, AnsibleError
from local_host import LocalHost, local_action

from ansible_collections.airgap.docker.plugins.action.push_archive import ActionModule
from ansible_collections.airgap.docker.plugins.plugin_utils import progress, resume

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


# Resumable copies (sha256 given), on a host that is this machine ---------------------------------

HOST = "host1"


@pytest.fixture
def random_bundle(tmp_path):
    data = os.urandom(100 * 1024 + 123)
    images = tmp_path / "bundle" / "images"
    images.mkdir(parents=True)
    (images / "app.tar.zst").write_bytes(data)
    (images / "app.tar.zst.airgap.json").write_bytes(SIDECAR)
    (tmp_path / "host").mkdir()
    return SimpleNamespace(dir=tmp_path / "bundle", data=data, dest=str(tmp_path / "host" / "app.tar.zst"), host=tmp_path / "host")


def resumable(bundle, host, data=None, **overrides):
    data = bundle.data if data is None else data
    given = {"bundle": str(bundle.dir), "path": "images/app.tar.zst", "dest": bundle.dest,
             "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    given.update(overrides)
    return local_action(ActionModule, given, host).run(task_vars={"inventory_hostname": HOST})


def partial_of(bundle, data=None):
    digest = hashlib.sha256(bundle.data if data is None else data).hexdigest()
    return "%s.%s-%s.partial" % (bundle.dest, digest[:16], resume.short_hash(HOST))


def left_on_host(bundle):
    return sorted(name for name in os.listdir(bundle.host) if name not in ("app.tar.zst", "app.tar.zst.airgap.json"))


def test_a_cut_copy_keeps_its_partial_and_the_next_moves_only_the_rest(small_blocks, random_bundle):
    host = LocalHost()
    host.cut_after = 60 * 1024
    with pytest.raises(AnsibleError, match="What arrived is kept on the host for the next run to resume from"):
        resumable(random_bundle, host)
    assert os.path.getsize(partial_of(random_bundle)) == 60 * 1024
    assert left_on_host(random_bundle) == [os.path.basename(partial_of(random_bundle))]  # the sidecar's was removed

    again = LocalHost()
    result = resumable(random_bundle, again)
    # three blocks of 16 KiB and one of the 12 KiB that end the partial copy, all matching
    assert result["resumed_from"] == 60 * 1024
    sent = len(random_bundle.data) - 60 * 1024
    assert result["bytes"] == sent + len(SIDECAR)
    assert again.moved == sent + len(SIDECAR)
    assert Path(random_bundle.dest).read_bytes() == random_bundle.data
    assert left_on_host(random_bundle) == []


def test_a_partial_whose_first_block_differs_is_sent_again_whole(small_blocks, random_bundle):
    damaged = bytearray(random_bundle.data[:60 * 1024])
    damaged[100] ^= 0xFF
    Path(partial_of(random_bundle)).write_bytes(bytes(damaged))
    host = LocalHost()
    result = resumable(random_bundle, host)
    assert result["resumed_from"] == 0 and result["bytes"] == len(random_bundle.data) + len(SIDECAR)
    assert Path(random_bundle.dest).read_bytes() == random_bundle.data


def test_a_hole_of_zeros_before_the_last_bytes_is_cut_back_to_the_last_good_block(small_blocks, random_bundle):
    """sftp writes with requests in flight: bytes 56 to 60 KiB arrived, 48 to 56 KiB did not."""
    data = random_bundle.data
    holed = data[:48 * 1024] + bytes(8 * 1024) + data[56 * 1024:60 * 1024]
    Path(partial_of(random_bundle)).write_bytes(holed)
    host = LocalHost()
    result = resumable(random_bundle, host)
    assert result["resumed_from"] == 48 * 1024
    assert host.moved == len(data) - 48 * 1024 + len(SIDECAR)
    assert any(command.startswith("truncate -s %d -- " % (48 * 1024)) for command in host.commands)
    assert Path(random_bundle.dest).read_bytes() == data


def test_the_rest_moves_in_pieces_no_larger_than_a_chunk(small_blocks, random_bundle):
    Path(partial_of(random_bundle)).write_bytes(random_bundle.data[:16 * 1024])
    host = LocalHost()
    resumable(random_bundle, host)
    pieces = [size for kind, _source, target, size in host.transfers if target.endswith(".chunk")]
    assert pieces == [32768, 32768, len(random_bundle.data) - 16 * 1024 - 65536]


def test_a_complete_partial_is_only_renamed(small_blocks, random_bundle):
    Path(partial_of(random_bundle)).write_bytes(random_bundle.data)
    host = LocalHost()
    result = resumable(random_bundle, host)
    assert result["resumed_from"] == len(random_bundle.data) and host.moved == len(SIDECAR)
    assert Path(random_bundle.dest).read_bytes() == random_bundle.data


def test_a_longer_partial_is_cut_to_the_archive(small_blocks, random_bundle):
    Path(partial_of(random_bundle)).write_bytes(random_bundle.data + b"more")
    resumable(random_bundle, LocalHost())
    assert Path(random_bundle.dest).read_bytes() == random_bundle.data


def test_the_partial_of_other_content_is_removed_once_the_copy_lands(small_blocks, random_bundle):
    other = os.urandom(5000)
    Path(partial_of(random_bundle, other)).write_bytes(other[:1000])
    Path(partial_of(random_bundle, other) + ".chunk").write_bytes(b"x")
    someone_else = "%s.%s-%s.partial" % (random_bundle.dest, "0" * 16, resume.short_hash("host2"))
    Path(someone_else).write_bytes(b"another inventory host's")
    resumable(random_bundle, LocalHost())
    assert left_on_host(random_bundle) == [os.path.basename(someone_else)]


@pytest.mark.parametrize("kind", ["symlink", "fifo"])
def test_something_planted_under_the_partial_name_is_refused(small_blocks, random_bundle, tmp_path, kind):
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep me")
    if kind == "symlink":
        os.symlink(victim, partial_of(random_bundle))
    else:
        os.mkfifo(partial_of(random_bundle))
    host = LocalHost()
    with pytest.raises(AnsibleActionFail, match=r"is not a regular file .*; remove it"):
        resumable(random_bundle, host)
    assert victim.read_bytes() == b"keep me" and host.moved == 0


def test_the_size_on_the_controller_must_be_the_manifest_s(small_blocks, random_bundle):
    with pytest.raises(AnsibleActionFail, match="has %d bytes, the manifest says 5" % len(random_bundle.data)):
        resumable(random_bundle, LocalHost(), size=5)


def test_a_copy_that_arrives_short_is_kept_and_not_renamed(small_blocks, random_bundle):
    host = LocalHost()
    host.alter = lambda target, data: data[:-10] if target.endswith(".partial") else data
    with pytest.raises(AnsibleActionFail, match="arrived on host1 as %d bytes, the manifest says %d" % (len(random_bundle.data) - 10, len(random_bundle.data))):
        resumable(random_bundle, host)
    assert not os.path.exists(random_bundle.dest)
    assert left_on_host(random_bundle) == [os.path.basename(partial_of(random_bundle))]


# Progress at -v -------------------------------------------------------------------------------


class Recorder:
    def __init__(self, verbosity):
        self.verbosity = verbosity
        self.lines = []

    def v(self, msg, host=None):
        self.lines.append((host, msg))


@pytest.mark.parametrize("verbosity", [0, 1])
def test_progress_lines_appear_at_v_only(small_blocks, random_bundle, monkeypatch, verbosity):
    recorder = Recorder(verbosity)
    monkeypatch.setattr(progress, "display", recorder)
    resumable(random_bundle, LocalHost())
    if verbosity == 0:
        assert recorder.lines == []
    else:
        assert [host for host, _msg in recorder.lines] == [HOST, HOST]
        assert recorder.lines[0][1].startswith("push_archive images/app.tar.zst: 100.1 KiB to move of 100.1 KiB")
        assert recorder.lines[-1][1].startswith("push_archive images/app.tar.zst: done, 100.1 KiB moved in ")


# Archives held as parts ---------------------------------------------------------------------


@pytest.fixture
def parted_bundle(random_bundle):
    whole = random_bundle.dir / "images" / "app.tar.zst"
    data = whole.read_bytes()
    whole.unlink()
    parts = []
    for number, start in enumerate(range(0, len(data), 40 * 1024), 1):
        piece = data[start:start + 40 * 1024]
        name = "images/app.tar.zst.part%03d" % number
        (random_bundle.dir / name).write_bytes(piece)
        parts.append({"path": name, "size": len(piece), "sha256": hashlib.sha256(piece).hexdigest()})
    random_bundle.parts = parts
    return random_bundle


def test_parts_are_sent_and_joined_on_the_host(small_blocks, parted_bundle):
    host = LocalHost()
    result = resumable(parted_bundle, host, parts=parted_bundle.parts)
    assert Path(parted_bundle.dest).read_bytes() == parted_bundle.data
    assert result["bytes"] == len(parted_bundle.data) + len(SIDECAR) and result["resumed_from"] == 0
    assert Path(parted_bundle.dest + ".airgap.json").read_bytes() == SIDECAR
    assert left_on_host(parted_bundle) == []
    # nothing was joined on the controller: every transfer is of one part (or the sidecar)
    assert sorted(os.path.basename(source) for _kind, source, _target, _size in host.transfers) == [
        "app.tar.zst.airgap.json", "app.tar.zst.part001", "app.tar.zst.part002", "app.tar.zst.part003"]


def test_a_part_that_arrives_altered_is_named_and_nothing_is_kept(small_blocks, parted_bundle):
    def flip(data):
        return data[:10] + bytes([data[10] ^ 1]) + data[11:]

    host = LocalHost()
    host.alter = lambda target, data: flip(data) if ".part002." in target else data
    second = parted_bundle.parts[1]
    altered = hashlib.sha256(flip((parted_bundle.dir / second["path"]).read_bytes())).hexdigest()
    message = r"^images/app\.tar\.zst\.part002 arrived with sha256 %s, the manifest says %s; nothing was kept\.$" % (altered, second["sha256"])
    with pytest.raises(AnsibleActionFail, match=message):
        resumable(parted_bundle, host, parts=parted_bundle.parts)
    assert not os.path.exists(parted_bundle.dest)
    left = left_on_host(parted_bundle)
    assert not [n for n in left if ".part002." in n or ".part" not in n], left  # neither the bad part nor the joined file


def test_a_cut_part_is_resumed(small_blocks, parted_bundle):
    host = LocalHost()
    host.cut_after = 20 * 1024  # part001, cut half-way
    with pytest.raises(AnsibleError, match="kept on the host"):
        resumable(parted_bundle, host, parts=parted_bundle.parts)
    again = LocalHost()
    result = resumable(parted_bundle, again, parts=parted_bundle.parts)
    assert result["resumed_from"] == 20 * 1024
    assert again.moved == len(parted_bundle.data) - 20 * 1024 + len(SIDECAR)
    assert Path(parted_bundle.dest).read_bytes() == parted_bundle.data


@pytest.mark.parametrize("change, message", [
    (lambda parts: parts[:1] + [dict(parts[2], path=parts[2]["path"])] + parts[2:], "Part 2 of images/app.tar.zst must be"),
    (lambda parts: [dict(parts[0], path="images/../x")] + parts[1:], "is not a path inside a bundle"),
    (lambda parts: [dict(parts[0], size=1)] + parts[1:], "add up to"),
])
def test_parts_that_do_not_describe_the_archive_are_refused(small_blocks, parted_bundle, change, message):
    with pytest.raises(AnsibleActionFail, match=message):
        resumable(parted_bundle, LocalHost(), parts=change(parted_bundle.parts))


def test_parts_need_the_whole_archive_s_checksum(small_blocks, parted_bundle):
    with pytest.raises(AnsibleActionFail, match="parts needs the sha256 and size"):
        resumable(parted_bundle, LocalHost(), parts=parted_bundle.parts, sha256=None)


def test_check_mode_with_parts_counts_the_parts(parted_bundle):
    given = {"bundle": str(parted_bundle.dir), "path": "images/app.tar.zst", "dest": parted_bundle.dest,
             "sha256": hashlib.sha256(parted_bundle.data).hexdigest(), "size": len(parted_bundle.data), "parts": parted_bundle.parts}
    result = local_action(ActionModule, given, LocalHost(), check_mode=True).run(task_vars={})
    assert result["bytes"] == len(parted_bundle.data) + len(SIDECAR)
