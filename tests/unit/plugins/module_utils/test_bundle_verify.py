# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import hashlib

import pytest

from ansible_collections.airgap.docker.plugins.module_utils.bundle_verify import check_files
from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError, ChecksumMismatch


def _bundle(tmp_path, archive=b"archive bytes", sidecar=b"{}"):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.tar").write_bytes(archive)
    (tmp_path / "images" / "a.tar.airgap.json").write_bytes(sidecar)
    entry = {"path": "images/a.tar", "size": len(archive), "sha256": hashlib.sha256(archive).hexdigest(),
             "sidecar": {"path": "images/a.tar.airgap.json", "sha256": hashlib.sha256(sidecar).hexdigest()}}
    return {"archives": [entry]}


def test_intact_files_are_hashed_once(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRGAP_DOCKER_CACHE", str(tmp_path / "cache"))
    manifest = _bundle(tmp_path)
    assert check_files(str(tmp_path), manifest, None) == len(b"archive bytes")
    assert check_files(str(tmp_path), manifest, None) == 0  # remembered
    assert check_files(str(tmp_path), manifest, []) == 0  # sizes and sidecars only


def test_damage_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRGAP_DOCKER_CACHE", str(tmp_path / "cache"))
    manifest = _bundle(tmp_path)
    (tmp_path / "images" / "a.tar").write_bytes(b"archive bytez")
    with pytest.raises(ChecksumMismatch, match="the archive was altered or damaged"):
        check_files(str(tmp_path), manifest, None, save_cache=False)
    (tmp_path / "images" / "a.tar.airgap.json").write_bytes(b"[]")
    with pytest.raises(ChecksumMismatch, match="the sidecar was altered"):
        check_files(str(tmp_path), manifest, None)
    (tmp_path / "images" / "a.tar.airgap.json").unlink()
    with pytest.raises(ArchiveError, match=r"images/a\.tar\.airgap\.json is missing from the bundle"):
        check_files(str(tmp_path), manifest, None)
