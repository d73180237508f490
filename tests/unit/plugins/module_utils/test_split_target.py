# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys

import pytest
from archive_factory import chunks, random_bytes

from ansible_collections.airgap.docker.plugins.module_utils import split_target
from ansible_collections.airgap.docker.plugins.module_utils.archive_files import OpenedArchive, PartsStat
from ansible_collections.airgap.docker.plugins.module_utils.archive_parts import plan
from ansible_collections.airgap.docker.plugins.module_utils.errors import ChecksumMismatch, InvalidInput
from ansible_collections.airgap.docker.plugins.module_utils.split_target import (
    SplitTarget,
    lay_out_again,
    layout_problem,
    remove_dead_part_partials,
)

MIB = 1 << 20
DATA = random_bytes(9, 2 * MIB + MIB // 2)


def listing(directory):
    return sorted(os.listdir(str(directory)))


def written(path, data=DATA, split_size=MIB, block=70_001):
    target = SplitTarget(path, split_size)
    for chunk in chunks(data, block):
        target.file.write(chunk)
    target.sync()
    return target


def read(name):
    with open(name, "rb") as handle:
        return handle.read()


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "app.tar")


def test_without_split_size_one_file(path, tmp_path):
    target = written(path, split_size=None)
    assert not target.split and target.records() == [] and os.path.dirname(target.temp_path) == str(tmp_path)
    assert listing(tmp_path) == [os.path.basename(target.temp_path)]
    target.commit()
    assert listing(tmp_path) == ["app.tar"] and read(path) == DATA


def test_parts_as_the_stream_arrives_put_in_place_at_commit(path, tmp_path):
    target = written(path)
    assert target.split
    # Before the commit only hidden temporary files: nothing a reader takes for parts.
    assert all(name.startswith(".") and name.endswith(".partial") for name in listing(tmp_path)) and len(listing(tmp_path)) == 3
    stat = target.temp_stat()
    assert isinstance(stat, PartsStat) and stat.st_size == len(DATA)
    target.commit()
    assert listing(tmp_path) == ["app.tar.part001", "app.tar.part002", "app.tar.part003"]
    sizes = [os.path.getsize(path + ".part%03d" % n) for n in (1, 2, 3)]
    assert sizes == plan(len(DATA), MIB)
    assert b"".join(read(path + ".part%03d" % n) for n in (1, 2, 3)) == DATA
    assert target.records() == [{"name": "app.tar.part%03d" % n, "size": size,
                                 "sha256": hashlib.sha256(read(path + ".part%03d" % n)).hexdigest()}
                                for n, size in zip((1, 2, 3), sizes)]


def test_the_same_parts_as_coreutils_split(path, tmp_path):
    reference = tmp_path / "reference"
    reference.mkdir()
    (reference / "app.tar").write_bytes(DATA)
    subprocess.run(["split", "-b", str(MIB), "-d", "-a", "3", "--numeric-suffixes=1", "app.tar", "app.tar.part"],
                   cwd=str(reference), check=True)
    written(path, block=4096).commit()
    for name in ("app.tar.part001", "app.tar.part002", "app.tar.part003"):
        assert read(os.path.join(str(tmp_path), name)) == (reference / name).read_bytes()


def test_an_archive_of_exactly_the_split_size_stays_whole(path, tmp_path):
    target = written(path, DATA[:MIB])
    target.commit()
    assert listing(tmp_path) == ["app.tar"] and not target.split


def test_abort_leaves_the_previous_files(path, tmp_path):
    for number in (1, 2):
        with open(path + ".part%03d" % number, "wb") as handle:
            handle.write(b"old")
    target = written(path)
    target.abort()
    assert listing(tmp_path) == ["app.tar.part001", "app.tar.part002"] and read(path + ".part001") == b"old"


def test_commit_removes_what_the_new_layout_does_not_use(path, tmp_path):
    with open(path, "wb") as handle:
        handle.write(b"an earlier whole archive")
    for number in (1, 2, 3, 4, 7):
        with open(path + ".part%03d" % number, "wb") as handle:
            handle.write(b"an earlier split")
    written(path).commit()
    assert listing(tmp_path) == ["app.tar.part001", "app.tar.part002", "app.tar.part003"]
    written(path, split_size=None).commit()
    assert listing(tmp_path) == ["app.tar"]


def test_parts_keep_the_mode_of_the_files_they_replace(path):
    with open(path + ".part001", "wb"):
        pass
    os.chmod(path + ".part001", 0o640)
    written(path).commit()
    assert all(os.stat(path + ".part%03d" % n).st_mode & 0o777 == 0o640 for n in (1, 2, 3))


def test_more_parts_than_allowed_fail_in_one_sentence(path, tmp_path, monkeypatch):
    monkeypatch.setattr(split_target, "MAX_PARTS", 2)
    with pytest.raises(InvalidInput) as raised:
        written(path)
    assert raised.value.msg == ("%s would need more than 2 parts of %d bytes; choose a larger split_size. Nothing was "
                                "written." % (path, MIB))


def test_dead_temporary_parts_are_removed(path, tmp_path):
    dead = tmp_path / ".app.tar.part009.abc123.partial"
    dead.write_bytes(b"left by a killed run")
    other = tmp_path / ".app.tar.gz.part001.abc123.partial"
    other.write_bytes(b"another archive's")
    remove_dead_part_partials(path)
    assert not dead.exists() and other.exists()


def test_layout_problem(path):
    assert layout_problem(path, MIB) is None  # nothing there
    with open(path, "wb") as handle:
        handle.write(DATA)
    assert layout_problem(path, None) is None and layout_problem(path, 4 * MIB) is None
    assert layout_problem(path, MIB) == ("it is one file of %d bytes, and split_size asks for 3 parts of %d bytes"
                                         % (len(DATA), MIB))
    open(path + ".part001", "wb").close()
    assert layout_problem(path, None) == "parts of an earlier split are left beside it"
    os.unlink(path)
    os.unlink(path + ".part001")
    written(path).commit()
    assert layout_problem(path, MIB) is None
    assert layout_problem(path, None) == "it is held as 3 parts, and without split_size the module keeps it whole"
    assert layout_problem(path, 8 * MIB) == "it is held as 3 parts, and split_size (8388608 bytes) keeps it whole"
    assert layout_problem(path, 2 * MIB) == ("it is held as 3 parts of up to %d bytes, and split_size asks for 2 parts of "
                                             "%d bytes" % (MIB, 2 * MIB))
    open(path + ".part009", "wb").close()  # beyond a gap: a stray of another split
    assert layout_problem(path, MIB).startswith("it is held as 3 parts")


def test_lay_out_again_from_the_archive_own_bytes(path, tmp_path):
    written(path).commit()
    digest = hashlib.sha256(DATA).hexdigest()
    target = lay_out_again(path, 2 * MIB, digest)
    target.commit()
    assert listing(tmp_path) == ["app.tar.part001", "app.tar.part002"]
    lay_out_again(path, None, digest).commit()
    assert listing(tmp_path) == ["app.tar"] and read(path) == DATA


def test_lay_out_again_refuses_bytes_that_changed(path, tmp_path):
    written(path).commit()
    with pytest.raises(ChecksumMismatch, match="it changed or is another archive; it was not laid out again"):
        lay_out_again(path, 2 * MIB, "0" * 64)
    assert listing(tmp_path) == ["app.tar.part001", "app.tar.part002", "app.tar.part003"]


def test_lay_out_again_of_a_whole_file_that_stays_whole(path):
    with open(path, "wb") as handle:
        handle.write(DATA)
    assert lay_out_again(path, None, hashlib.sha256(DATA).hexdigest()) is None


COLLECTION_PARENT = os.path.abspath(os.path.join(os.path.dirname(split_target.__file__), *[os.pardir] * 5))
WRITER = """
import sys, time
sys.path.insert(0, %r)
from ansible_collections.airgap.docker.plugins.module_utils.split_target import SplitTarget
target = SplitTarget(sys.argv[1], 1 << 20)
target.file.write(b"n" * (5 << 19))  # two parts and a half, none of them in place
target.flush()
print("written", flush=True)
time.sleep(120)
""" % COLLECTION_PARENT


def test_a_killed_writer_leaves_the_previous_parts_and_no_part_of_its_own(path, tmp_path):
    written(path).commit()
    before = listing(tmp_path)
    child = subprocess.Popen([sys.executable, "-c", WRITER, path], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "written"
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=10) == -signal.SIGKILL
    finally:
        child.kill()
        child.wait()
    leftovers = [name for name in listing(tmp_path) if name not in before]
    assert len(leftovers) == 3 and all(name.startswith(".app.tar.") and name.endswith(".partial") for name in leftovers)
    with OpenedArchive(path) as opened:
        assert opened.reader.read() == DATA  # the previous archive, whole
    written(path, DATA[:MIB + 1]).commit()
    assert listing(tmp_path) == ["app.tar.part001", "app.tar.part002"], "the dead writer's parts were removed"


def test_the_kernel_is_asked_to_write_behind_every_stretch_of_each_part(path, monkeypatch):
    monkeypatch.setattr(split_target, "WRITE_BEHIND", MIB // 2)
    asked = []
    monkeypatch.setattr(split_target.AtomicFile, "start_writeback", lambda self, end: asked.append((self, end)))
    written(path, split_size=2 * MIB).commit()
    assert [end for _file, end in asked] == [MIB // 2, MIB, 3 * MIB // 2, 2 * MIB, MIB // 2]  # each part from its start
    assert len({id(file) for file, _end in asked[:4]}) == 1 and asked[4][0] is not asked[0][0]
    assert read(path + ".part001") + read(path + ".part002") == DATA


def test_a_whole_archive_hashes_no_part(path, monkeypatch):
    """Its sha256 is the writer's: hashing every byte a second time cost a second of CPU per GiB."""
    target = written(path, split_size=None)
    assert target._digests == [None] and target.records() == []
