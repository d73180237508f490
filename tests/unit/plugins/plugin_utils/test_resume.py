# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import hashlib
import os
import subprocess

import pytest

from ansible_collections.airgap.docker.plugins.plugin_utils import remote_shell, resume

UNIT, BLOCK = 4096, 16384


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    monkeypatch.setattr(resume, "UNIT", UNIT)
    monkeypatch.setattr(resume, "BLOCK", BLOCK)
    monkeypatch.setattr(resume, "CHUNK", 2 * BLOCK)


def sh(command):
    run = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=False)
    return run.returncode, run.stdout


@pytest.mark.parametrize("limit, remote_end, expected", [
    (0, 0, []),
    (BLOCK, BLOCK, [(0, BLOCK)]),
    (2 * BLOCK + 5000, 2 * BLOCK + 5000, [(0, BLOCK), (BLOCK, BLOCK), (2 * BLOCK, 5000)]),  # dd stops where the file ends
    (2 * BLOCK + 5000, 10 * BLOCK, [(0, BLOCK), (BLOCK, BLOCK), (2 * BLOCK, UNIT)]),  # dd would read on: cut to a unit
    (100, 10 * BLOCK, []),
])
def test_blocks_cover_only_what_dd_can_read_exactly(limit, remote_end, expected):
    assert resume.blocks(limit, remote_end) == expected


def test_the_longest_matching_run_from_the_start_is_kept():
    spans = [(0, 10), (10, 10), (20, 5)]
    assert resume.matching_prefix(spans, ["a", "b", "c"], ["a", "b", "c"]) == 25
    assert resume.matching_prefix(spans, ["a", "b", "c"], ["a", "x", "c"]) == 10
    assert resume.matching_prefix(spans, ["a", "b", "c"], ["x", "b", "c"]) == 0
    assert resume.matching_prefix(spans, ["a", "b", "c"], ["a"]) == 10  # a host that answered less keeps less


def test_chunks_cut_the_rest_into_bounded_pieces():
    assert resume.chunks(BLOCK, 5 * BLOCK + 7) == [(BLOCK, 2 * BLOCK), (3 * BLOCK, 2 * BLOCK), (5 * BLOCK, 7)]
    assert resume.chunks(10, 10) == []


def test_the_host_s_digests_are_those_the_controller_computes(tmp_path):
    data = os.urandom(3 * BLOCK + 5000)
    path = tmp_path / "some file's name"
    path.write_bytes(data)
    spans = resume.blocks(len(data), len(data))
    rc, out = sh(remote_shell.hash_blocks(str(path), spans))
    fd = os.open(path, os.O_RDONLY)
    try:
        ours = resume.local_digests(fd, spans)
    finally:
        os.close(fd)
    assert rc == 0 and remote_shell.parse_digests(out) == ours
    assert ours[-1] == hashlib.sha256(data[3 * BLOCK:]).hexdigest()


def test_truncate_cuts_the_file(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 10000)
    assert sh(remote_shell.truncate(str(path), 4096))[0] == 0
    assert path.stat().st_size == 4096


def test_the_survey_tells_files_from_what_was_planted(tmp_path):
    (tmp_path / "file").write_bytes(b"12345")
    os.symlink(tmp_path / "file", tmp_path / "link")
    os.mkfifo(tmp_path / "fifo")
    names = [str(tmp_path / n) for n in ("file", "link", "fifo", "none")]
    rc, out = sh(remote_shell.survey(str(tmp_path), names))
    free, found = remote_shell.parse_survey(out)
    assert rc == 0 and free > 0
    assert found == [("file", 5), ("other", 0), ("other", 0), ("none", 0)]


def test_read_chunk_and_append_chunk_move_a_piece(tmp_path):
    data = os.urandom(3 * UNIT + 100)
    (tmp_path / "src").write_bytes(data)
    (tmp_path / "partial").write_bytes(data[:UNIT])
    chunk = str(tmp_path / "chunk")
    assert sh(remote_shell.read_chunk(str(tmp_path / "src"), chunk, UNIT, 2 * UNIT + 100))[0] == 0
    assert sh(remote_shell.append_chunk(chunk, str(tmp_path / "partial"), 2 * UNIT + 100, len(data)))[0] == 0
    assert (tmp_path / "partial").read_bytes() == data and not os.path.exists(chunk)
    # a piece of the wrong size is not appended
    (tmp_path / "chunk").write_bytes(b"short")
    assert sh(remote_shell.append_chunk(chunk, str(tmp_path / "partial"), 100, len(data) + 100))[0] != 0
    assert (tmp_path / "partial").read_bytes() == data


def test_size_is_says_the_size_it_found(tmp_path):
    (tmp_path / "f").write_bytes(b"abc")
    assert sh(remote_shell.size_is(str(tmp_path / "f"), 3)) == (0, "")
    assert sh(remote_shell.size_is(str(tmp_path / "f"), 4)) == (3, "3\n")


def test_join_checks_each_part_as_it_is_appended(tmp_path):
    parts = []
    for number, content in enumerate([b"first ", b"second ", b"third"], 1):
        (tmp_path / ("p%d" % number)).write_bytes(content)
        parts.append((str(tmp_path / ("p%d" % number)), hashlib.sha256(content).hexdigest()))
    joined = tmp_path / "joined"
    rc, out = sh(remote_shell.join_parts(str(joined), parts))
    assert rc == 0 and remote_shell.parse_join(out) is None and out.split() == ["ok", "1", "ok", "2", "ok", "3"]
    assert joined.read_bytes() == b"first second third"
    (tmp_path / "p2").write_bytes(b"SECOND ")
    rc, out = sh(remote_shell.join_parts(str(joined), parts))
    assert remote_shell.parse_join(out) == (2, hashlib.sha256(b"SECOND ").hexdigest())
    assert not joined.exists()


def test_join_never_writes_through_a_link_under_the_joined_name(tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep me")
    os.symlink(victim, tmp_path / "joined")
    (tmp_path / "p1").write_bytes(b"part")
    rc, _out = sh(remote_shell.join_parts(str(tmp_path / "joined"), [(str(tmp_path / "p1"), hashlib.sha256(b"part").hexdigest())]))
    assert rc == 0 and victim.read_bytes() == b"keep me" and (tmp_path / "joined").read_bytes() == b"part"


def test_short_hash_tells_inventory_hosts_apart():
    assert resume.short_hash("web1") != resume.short_hash("web2") and len(resume.short_hash("web1")) == 8
