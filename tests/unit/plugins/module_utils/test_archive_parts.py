# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Archives held as parts: the layout, splitting (checked, all or nothing), and recognising a set of parts."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from ansible_collections.airgap.docker.plugins.module_utils import archive_parts
from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError, InvalidInput
from ansible_collections.airgap.docker.plugins.module_utils.split_target import SplitTarget
from ansible_collections.airgap.docker.plugins.module_utils.verified_memo import VerifiedCache

MIB = 1 << 20


@pytest.fixture(autouse=True)
def private_memo(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRGAP_DOCKER_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize("text, size", [("4G", 4 << 30), ("4095M", 4095 * MIB), ("4 GiB", 4 << 30), ("2mb", 2 * MIB),
                                        (str(3 * MIB), 3 * MIB), (3 * MIB, 3 * MIB), ("0", None), ("", None), (None, None)])
def test_sizes_are_read_in_powers_of_1024(text, size):
    assert archive_parts.parse_size(text) == size


@pytest.mark.parametrize("text", ["4X", "-1", "1.5G", "G", "4 gigabytes"])
def test_a_size_that_is_not_one_is_refused(text):
    with pytest.raises(InvalidInput, match="is not a size"):
        archive_parts.parse_size(text)


def test_parts_below_one_mebibyte_are_refused():
    with pytest.raises(InvalidInput, match="below the smallest allowed, 1M"):
        archive_parts.parse_size("512K")


def test_the_layout_is_equal_parts_and_the_rest():
    assert archive_parts.plan(10 * MIB, 4 * MIB) == [4 * MIB, 4 * MIB, 2 * MIB]
    assert archive_parts.plan(8 * MIB, 4 * MIB) == [4 * MIB, 4 * MIB]
    assert archive_parts.plan(4 * MIB, 4 * MIB) == []
    assert archive_parts.plan(4 * MIB, None) == []
    assert archive_parts.is_layout([4, 4, 2], 10) and not archive_parts.is_layout([4, 2, 4], 10)
    assert not archive_parts.is_layout([10], 10) and not archive_parts.is_layout([4, 4], 10)


def test_more_than_999_parts_are_refused():
    with pytest.raises(InvalidInput, match="would make 1000 parts; at most 999"):
        archive_parts.plan(1000 * MIB, MIB)


def test_first_part_names_its_archive():
    assert archive_parts.first_part_of("/x/a.tar.zst.part001") == "/x/a.tar.zst"
    assert archive_parts.first_part_of("/x/a.tar.zst.part002") is None
    assert archive_parts.first_part_of("/x/a.tar.zst") is None


def _split(tmp_path, data, split):
    """The archive written as parts the way the modules and the bundle write them (split_target)."""
    path = str(tmp_path / "a.tar.zst")
    target = SplitTarget(path, split)
    target.write(data)
    records = target.records()
    target.commit()
    return path, [dict(r, path=os.path.join(str(tmp_path), r["name"])) for r in records]


def test_parts_are_what_coreutils_split_gives(tmp_path):
    data = os.urandom(5 * MIB + 123)
    path, records = _split(tmp_path, data, 2 * MIB)
    assert [os.path.basename(r["path"]) for r in records] == ["a.tar.zst.part001", "a.tar.zst.part002", "a.tar.zst.part003"]
    other = tmp_path / "other"
    other.mkdir()
    (other / "a.tar.zst").write_bytes(data)
    subprocess.run(["split", "-b", str(2 * MIB), "-d", "-a", "3", "--numeric-suffixes=1", "a.tar.zst", "a.tar.zst.part"],
                   cwd=other, check=True)
    for record in records:
        written = Path(record["path"]).read_bytes()
        assert (other / os.path.basename(record["path"])).read_bytes() == written
        assert record["sha256"] == hashlib.sha256(written).hexdigest()
    with archive_parts.PartsReader(archive_parts.existing_parts(path)) as reader:
        assert reader.read() == data
    assert archive_parts.is_layout([r["size"] for r in records], len(data))


def test_parts_are_recognised_from_the_memo_and_checked_when_changed(tmp_path):
    data = os.urandom(3 * MIB + 5)
    (tmp_path / "images").mkdir()
    path = _split(tmp_path / "images", data, MIB)[0]
    digest = hashlib.sha256(data).hexdigest()
    cache = VerifiedCache(str(tmp_path))
    parts = archive_parts.parts_of(cache, str(tmp_path), "images/a.tar.zst", digest, len(data))
    assert [p["path"] for p in parts] == ["images/a.tar.zst.part%03d" % n for n in (1, 2, 3, 4)]
    assert archive_parts.held_as_parts(cache, str(tmp_path), "images/a.tar.zst", digest, len(data))
    assert not archive_parts.held_as_parts(cache, str(tmp_path), "images/a.tar.zst", "00" * 32, len(data))
    # A part swapped for another of the same size: hashed again, and refused.
    part2, part3 = path + ".part002", path + ".part003"
    os.rename(part2, path + ".tmp")
    os.rename(part3, part2)
    os.rename(path + ".tmp", part3)
    assert not archive_parts.held_as_parts(cache, str(tmp_path), "images/a.tar.zst", digest, len(data))
    os.unlink(part3)
    assert not archive_parts.held_as_parts(cache, str(tmp_path), "images/a.tar.zst", digest, len(data))


def test_a_missing_part_is_named(tmp_path):
    (tmp_path / "a.part001").write_bytes(b"x")
    reader = archive_parts.PartsReader([str(tmp_path / "a.part001"), str(tmp_path / "a.part002")])
    with reader, pytest.raises(ArchiveError, match=r"a\.part002 is missing: the archive is held as 2 parts"):
        reader.read()
