# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import gzip
import os

import pytest
from archive_factory import layer_tar

from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError, ChecksumMismatch
from ansible_collections.airgap.docker.plugins.module_utils.existing_archive import (
    ArchiveReader,
    ExistingArchive,
    check_own_sha256,
    check_sidecar_size,
    expected_sha256,
)

A, B = "a" * 64, "b" * 64


def test_missing_archive(tmp_path):
    with pytest.raises(ArchiveError, match=r"^The archive .*missing\.tar does not exist\.$"):
        ExistingArchive(str(tmp_path / "missing.tar"), lambda path, stat: None)


def test_existing_archive_knows_its_compression_and_memo(tmp_path):
    path = tmp_path / "a.tar.gz"
    path.write_bytes(gzip.compress(layer_tar({"f": b"x"})))
    seen = []
    existing = ExistingArchive(str(path), lambda p, stat: seen.append((p, stat.st_size)) or {"remembered": True})
    assert existing.compression == "gzip" and existing.remembered == {"remembered": True}
    assert seen == [(str(path), os.path.getsize(path))]
    assert existing.sidecar() is None


def test_not_an_archive(tmp_path):
    path = tmp_path / "a.tar"
    path.write_bytes(b"")
    with pytest.raises(ArchiveError, match="is empty, not an archive"):
        ExistingArchive(str(path), lambda p, stat: None)


def test_sidecar_size():
    stat = os.stat_result((0o100600, 0, 0, 1, 0, 0, 10, 0, 0, 0))
    check_sidecar_size({"archive": {"size": 10}}, stat, "loaded", "/a.tar")
    with pytest.raises(ChecksumMismatch, match=r"^/a.tar is 10 bytes but its sidecar /a.tar.airgap.json records 11: .* Nothing was loaded;"):
        check_sidecar_size({"archive": {"size": 11}}, stat, "loaded", "/a.tar")


def test_expected_sha256():
    assert expected_sha256(None, A, "loaded", "/a.tar") == A
    assert expected_sha256(A, None, "loaded", "/a.tar") == A
    assert expected_sha256("sha256:" + A, A, "loaded", "/a.tar") == A
    with pytest.raises(ChecksumMismatch, match=r"^The sidecar of /a\.tar records sha256"):
        expected_sha256(A, B, "loaded", "/a.tar")
    with pytest.raises(ChecksumMismatch, match=r"^/a\.tar has sha256 %s according to a read of the file" % B):
        expected_sha256(A, B, "loaded", "/a.tar", "a read of the file")


def test_own_sha256():
    check_own_sha256(None, A, "/a.tar", "imported")
    check_own_sha256(A, A, "/a.tar", "imported")
    with pytest.raises(ChecksumMismatch, match=r"Nothing was imported\.$"):
        check_own_sha256(B, A, "/a.tar", "imported")


def test_reader_checks_a_sidecar_before_believing_it():
    reader = ArchiveReader(A, lambda p, s: None, lambda p, d, s: None, lambda stats: None)
    stat = os.stat_result((0o100600, 0, 0, 1, 0, 0, 10, 0, 0, 0))
    assert reader.sidecar_sha256({"archive": {"size": 10, "sha256": A}}, stat, "loaded", "/a.tar") == A
    with pytest.raises(ChecksumMismatch):
        reader.sidecar_sha256({"archive": {"size": 10, "sha256": B}}, stat, "loaded", "/a.tar")
