# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import hashlib
import os

import pytest
from archive_factory import random_bytes

from ansible_collections.airgap.docker.plugins.module_utils import sidecar
from ansible_collections.airgap.docker.plugins.module_utils.archive_files import (
    OpenedArchive,
    PartsStat,
    archive_files,
    archive_stat,
    check_parts,
    part_sizes,
    read_from_parts,
    resolve,
)
from ansible_collections.airgap.docker.plugins.module_utils.archive_parts import all_parts, part_numbers
from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError
from ansible_collections.airgap.docker.plugins.module_utils.verified_memo import file_identity, same_file

MIB = 1 << 20
DATA = random_bytes(5, 2 * MIB + 1000)


def split(path, data=DATA, size=MIB):
    """The parts coreutils' split would make of data (part001, part002, ...)."""
    names = []
    for number, start in enumerate(range(0, len(data), size), 1):
        name = "%s.part%03d" % (path, number)
        with open(name, "wb") as handle:
            handle.write(data[start:start + size])
        names.append(name)
    return names


def record(path, data=DATA, size=MIB, **archive):
    """Write a sidecar of path recording data held as parts of `size` bytes."""
    parts = [{"name": os.path.basename("%s.part%03d" % (path, n)), "size": len(data[s:s + size]),
              "sha256": hashlib.sha256(data[s:s + size]).hexdigest()} for n, s in enumerate(range(0, len(data), size), 1)]
    facts = dict({"size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "parts": parts}, **archive)
    sidecar.write(path, sidecar.build(facts, []))


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "app.tar")


def test_resolve_takes_the_first_part_to_its_archive():
    assert resolve("/m/app.tar.part001") == "/m/app.tar"
    assert resolve("/m/app.tar.part002") == "/m/app.tar.part002"
    assert resolve("/m/app.tar") == "/m/app.tar"


def test_part_numbers_sees_gaps_and_ignores_other_names(path):
    for suffix in (".part001", ".part003", ".part000", ".part1000", ".partabc", ".part002.airgap.json"):
        open(path + suffix, "wb").close()
    open(os.path.join(os.path.dirname(path), ".app.tar.part002.x1.partial"), "wb").close()
    assert part_numbers(path) == [1, 3]
    assert all_parts(path) == [path + ".part001", path + ".part003"]


def test_a_whole_file_wins_over_parts_beside_it(path):
    split(path)
    assert read_from_parts(path) and archive_files(path) == [path + ".part001", path + ".part002", path + ".part003"]
    stat = archive_stat(path)
    assert isinstance(stat, PartsStat) and stat.st_size == len(DATA) and len(stat.st_ino) == 3
    assert part_sizes(path) == [MIB, MIB, 1000]
    with open(path, "wb") as handle:
        handle.write(b"whole")
    assert not read_from_parts(path) and archive_files(path) == [path] and archive_stat(path).st_size == 5
    assert part_sizes(path) == []


def test_nothing_there(path):
    assert archive_stat(path) is None and archive_files(path) == [] and not read_from_parts(path)


def test_parts_identity_changes_with_any_part(path):
    names = split(path)
    before = archive_stat(path)
    assert file_identity(before) == file_identity(archive_stat(path))
    with open(names[1], "r+b") as handle:
        handle.write(b"x")
    assert file_identity(archive_stat(path)) != file_identity(before)


@pytest.mark.parametrize("remove, message", [
    (".part002", "app.tar.part002 is missing: %(p)s is held as numbered parts and only 1 part(s) from part001 on are there; "
                 "nothing was loaded."),
    (".part001", "app.tar.part001 is missing"),
])
def test_a_gap_names_the_missing_part(path, remove, message):
    split(path)
    os.unlink(path + remove)
    with pytest.raises(ArchiveError) as raised:
        check_parts(path, None, "loaded")
    assert (message % {"p": path}) in raised.value.msg


def test_one_part_alone_misses_the_next(path):
    split(path, DATA[:MIB])
    with pytest.raises(ArchiveError, match=r"app\.tar\.part002 is missing"):
        check_parts(path, None, "loaded")


def test_the_sidecar_names_a_missing_last_part(path):
    split(path)
    record(path)
    os.unlink(path + ".part003")
    with pytest.raises(ArchiveError, match=r"app\.tar\.part003 is missing: .* only 2 part\(s\)"):
        check_parts(path, sidecar.read_sidecar(path)["archive"], "imported")


def test_the_sidecar_size_names_a_missing_last_part_without_part_records(path):
    split(path, DATA[:3 * MIB], MIB)
    os.unlink(path + ".part003")
    with pytest.raises(ArchiveError, match=r"app\.tar\.part003 is missing"):
        check_parts(path, {"size": 3 * MIB}, "loaded")


def test_a_part_of_another_size_than_recorded_is_named(path):
    names = split(path)
    record(path)
    with open(names[2], "ab") as handle:
        handle.write(b"more")
    with pytest.raises(ArchiveError) as raised:
        check_parts(path, sidecar.read_sidecar(path)["archive"], "loaded")
    assert raised.value.msg == ("%s is 1004 bytes, but the sidecar of %s records 1000: the part is truncated or was "
                                "replaced; nothing was loaded." % (names[2], path))


def test_a_middle_part_that_is_short_is_named(path):
    names = split(path)
    with open(names[1], "r+b") as handle:
        handle.truncate(MIB - 1)
    with pytest.raises(ArchiveError) as raised:
        check_parts(path, None, "read")
    assert raised.value.msg.startswith("%s is %d bytes, but every part of a split archive" % (names[1], MIB - 1))


def test_parts_that_add_up_to_another_size_are_refused(path):
    split(path)
    with pytest.raises(ArchiveError, match="make %d bytes, but its sidecar records 5" % len(DATA)):
        check_parts(path, {"size": 5}, "loaded")


def test_complete_parts_and_whole_files_pass(path):
    split(path)
    record(path)
    check_parts(path, sidecar.read_sidecar(path)["archive"], "loaded")
    check_parts(path, None, "loaded")
    with open(path, "wb") as handle:
        handle.write(b"whole")
    check_parts(path, {"size": 1}, "loaded")  # a whole file: the size check is the caller's (check_sidecar_size)


def test_parts_are_read_as_one_stream(path):
    split(path)
    with OpenedArchive(path) as opened:
        assert opened.reader.read() == DATA
        after = opened.stat_after()
    assert same_file(opened.stat_before, after)
    assert opened.parts() == [{"name": "app.tar.part%03d" % n, "size": len(DATA[s:s + MIB]),
                               "sha256": hashlib.sha256(DATA[s:s + MIB]).hexdigest()}
                              for n, s in enumerate(range(0, len(DATA), MIB), 1)]


def test_a_read_cut_short_has_no_stat_and_no_parts(path):
    split(path)
    with OpenedArchive(path) as opened:
        opened.reader.read(10)
        assert opened.stat_after() is None and opened.parts() == []


def test_a_whole_file_reads_as_before(path):
    with open(path, "wb") as handle:
        handle.write(DATA)
    with OpenedArchive(path) as opened:
        assert opened.reader.read() == DATA
        assert same_file(opened.stat_before, opened.stat_after())
        assert opened.parts() == [] and opened.damaged_part() is None


def test_a_missing_archive_is_one_sentence(path):
    with pytest.raises(ArchiveError, match="does not exist"):
        OpenedArchive(path)


def _flip(name, offset):
    with open(name, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 1]))


def test_a_damaged_part_is_named_from_the_sidecar(path):
    names = split(path)
    record(path)
    _flip(names[1], 100)
    with OpenedArchive(path) as opened:
        opened.reader.read()
        assert opened.damaged_part().startswith("%s does not match the sidecar of %s (sha256 " % (names[1], path))
    # Failed while the damaged part was read: the rest of it is read from disk to tell.
    with OpenedArchive(path) as opened:
        assert len(opened.reader.read(MIB)) == MIB and len(opened.reader.read(10)) == 10
        assert names[1] in opened.damaged_part()
    # Failed while an earlier, sound part was read: no part is blamed.
    with OpenedArchive(path) as opened:
        opened.reader.read(10)
        assert opened.damaged_part() is None


def test_without_part_records_no_part_is_blamed(path):
    names = split(path)
    _flip(names[1], 100)
    with OpenedArchive(path) as opened:
        opened.reader.read()
        assert opened.damaged_part() is None
