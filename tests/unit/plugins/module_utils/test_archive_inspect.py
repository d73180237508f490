# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""state=inspected's reading: where the description comes from, and the checksum compared, never enforced."""

from __future__ import annotations

import hashlib

import pytest
from archive_factory import ImageSpec, legacy_archive

from ansible_collections.airgap.docker.plugins.module_utils import sidecar
from ansible_collections.airgap.docker.plugins.module_utils.archive_inspect import (
    FROM_ARCHIVE,
    FROM_MEMO,
    FROM_SIDECAR,
    Inspection,
    inspect,
    message,
    parts_result,
)
from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError
from ansible_collections.airgap.docker.plugins.module_utils.image_load_steps import ImageArchiveReader
from ansible_collections.airgap.docker.plugins.module_utils.image_transfer import ArchiveContent, scan_archive
from ansible_collections.airgap.docker.plugins.module_utils.verified_memo import VerifiedMemo

DATA = legacy_archive([ImageSpec(tags=["app:1"])])
SHA256 = hashlib.sha256(DATA).hexdigest()
SIZE = len(DATA)


class Reader(ImageArchiveReader):
    def __init__(self, memo, checksum=None):
        self.stats = {"archive_bytes_read": 0}
        super().__init__(checksum, lambda p, s: memo.recall(p, "images", s),
                         lambda p, d, s: memo.remember(p, "images", d, s), self._add)

    def _add(self, stats):
        self.stats["archive_bytes_read"] += stats.get("archive_bytes_read", 0)


@pytest.fixture
def setup(tmp_path):
    path = tmp_path / "app.tar"
    path.write_bytes(DATA)
    return str(path), VerifiedMemo(str(tmp_path / "memo"))


def _with_sidecar(path, sha256=SHA256, size=SIZE):
    content = scan_archive(path)
    sidecar.write(path, sidecar.build({"size": size, "sha256": sha256, "compression": "none", "layout": "legacy"},
                                      content.images))


def test_without_sidecar_the_archive_is_read_then_remembered(setup):
    path, memo = setup
    found = inspect(Reader(memo), path, None)
    assert (found.source, found.verified, found.content.sha256) == (FROM_ARCHIVE, None, SHA256)
    reader = Reader(memo)
    again = inspect(reader, path, "sha256:" + SHA256)
    assert (again.source, again.verified, reader.stats["archive_bytes_read"]) == (FROM_MEMO, True, 0)


def test_a_sidecar_that_agrees_in_size_describes_without_a_read(setup):
    path, memo = setup
    _with_sidecar(path)
    reader = Reader(memo)
    found = inspect(reader, path, None)
    assert (found.source, found.verified, reader.stats["archive_bytes_read"]) == (FROM_SIDECAR, None, 0)
    assert found.content.images[0].tags == ["app:1"]


def test_with_checksum_the_file_is_hashed_and_compared(setup):
    path, memo = setup
    _with_sidecar(path)
    # With a checksum the archive is read, and what it holds comes from that read, not from the sidecar.
    found = inspect(Reader(memo), path, SHA256)
    assert (found.source, found.verified) == (FROM_ARCHIVE, True)
    wrong = inspect(Reader(memo), path, "1" * 64)
    assert (wrong.source, wrong.verified) == (FROM_MEMO, False)


def test_a_sidecar_of_another_file_is_not_believed(setup):
    path, memo = setup
    _with_sidecar(path, sha256="2" * 64)
    found = inspect(Reader(memo), path, SHA256)
    assert (found.source, found.verified) == (FROM_ARCHIVE, True)
    _with_sidecar(path, size=5)
    assert inspect(Reader(VerifiedMemo(path + ".memo2")), path, None).source == FROM_ARCHIVE


def test_a_file_that_is_no_archive_fails(tmp_path):
    path = tmp_path / "notes.tar"
    path.write_bytes(b"notes\n" * 100)
    with pytest.raises(ArchiveError, match="is not a tar archive"):
        inspect(Reader(VerifiedMemo(str(tmp_path / "memo"))), str(path), None)


def test_message_and_parts_of_a_whole_file(setup):
    path, _memo = setup
    content = ArchiveContent("none", "legacy", [object(), object()])
    assert message(Inspection(content, FROM_SIDECAR, None)) == "the archive holds 2 image(s), as its sidecar records"
    assert message(Inspection(content, FROM_ARCHIVE, False)).endswith("; it does NOT have the checksum")
    assert parts_result(path, content) == []
