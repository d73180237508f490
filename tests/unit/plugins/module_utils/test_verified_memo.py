# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import os
import time

import pytest

from ansible_collections.airgap.docker.plugins.module_utils import verified_memo
from ansible_collections.airgap.docker.plugins.module_utils.verified_memo import VerifiedMemo, same_file

FACTS = {"archive": {"sha256": "ab" * 32}, "images": [{"tags": ["app:1"]}]}


@pytest.fixture
def archive(tmp_path):
    path = tmp_path / "app.tar"
    path.write_bytes(b"x" * 1024)
    return str(path)


@pytest.fixture
def memo(tmp_path):
    return VerifiedMemo(str(tmp_path / "cache" / "verified"))


def test_remembered_facts_are_recalled_for_the_unchanged_file(memo, archive):
    assert memo.remember(archive, "images", FACTS, os.stat(archive))
    assert memo.recall(archive, "images", os.stat(archive)) == FACTS


def test_directory_and_entries_are_private(memo, archive):
    memo.remember(archive, "images", FACTS, os.stat(archive))
    assert os.stat(memo.directory).st_mode & 0o777 == 0o700
    entries = os.listdir(memo.directory)
    assert len(entries) == 1
    assert os.stat(os.path.join(memo.directory, entries[0])).st_mode & 0o777 == 0o600


def test_another_kind_misses(memo, archive):
    memo.remember(archive, "images", FACTS, os.stat(archive))
    assert memo.recall(archive, "container", os.stat(archive)) is None


def test_a_rewrite_that_restores_size_and_mtime_misses(memo, archive):
    """The attack the memo exists for: replace the bytes, put the mtime back; the ctime still moves."""
    before = os.stat(archive)
    memo.remember(archive, "images", FACTS, before)
    time.sleep(0.01)
    with open(archive, "r+b") as handle:
        handle.write(b"y")
    os.utime(archive, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(archive)
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert memo.recall(archive, "images", after) is None


def test_a_replaced_file_misses(memo, archive, tmp_path):
    memo.remember(archive, "images", FACTS, os.stat(archive))
    other = tmp_path / "other"
    other.write_bytes(b"x" * 1024)
    os.replace(str(other), archive)
    assert memo.recall(archive, "images", os.stat(archive)) is None


def test_another_path_to_a_copy_misses(memo, archive, tmp_path):
    memo.remember(archive, "images", FACTS, os.stat(archive))
    copy = tmp_path / "copy.tar"
    copy.write_bytes(b"x" * 1024)
    assert memo.recall(str(copy), "images", os.stat(str(copy))) is None


def test_a_directory_others_may_write_is_not_believed(memo, archive):
    memo.remember(archive, "images", FACTS, os.stat(archive))
    os.chmod(memo.directory, 0o777)
    assert memo.recall(archive, "images", os.stat(archive)) is None
    assert not memo.remember(archive, "images", FACTS, os.stat(archive))


def test_a_planted_symlink_entry_is_not_followed(memo, archive, tmp_path):
    memo.remember(archive, "images", FACTS, os.stat(archive))
    entry = os.path.join(memo.directory, os.listdir(memo.directory)[0])
    planted = tmp_path / "planted.json"
    with open(entry, "rb") as handle:
        planted.write_bytes(handle.read())
    os.unlink(entry)
    os.symlink(str(planted), entry)
    assert memo.recall(archive, "images", os.stat(archive)) is None


@pytest.mark.parametrize("content", [b"", b"not json", b"[]", b'{"schema": 2}', b'{"schema": 1, "kind": "images"}'])
def test_damaged_entries_are_misses(memo, archive, content):
    memo.remember(archive, "images", FACTS, os.stat(archive))
    entry = os.path.join(memo.directory, os.listdir(memo.directory)[0])
    with open(entry, "wb") as handle:
        handle.write(content)
    assert memo.recall(archive, "images", os.stat(archive)) is None


def test_an_unwritable_cache_is_a_miss_not_an_error(tmp_path, archive):
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    memo = VerifiedMemo(str(blocker / "verified"))
    assert not memo.remember(archive, "images", FACTS, os.stat(archive))
    assert memo.recall(archive, "images", os.stat(archive)) is None


def test_nothing_is_remembered_without_a_stable_stat(memo, archive):
    assert not memo.remember(archive, "images", FACTS, None)
    assert memo.recall(archive, "images", None) is None


def test_forget(memo, archive):
    memo.remember(archive, "images", FACTS, os.stat(archive))
    memo.forget(archive)
    assert memo.recall(archive, "images", os.stat(archive)) is None
    memo.forget(archive)  # twice is fine


def test_default_directory_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(verified_memo.CACHE_ENV, str(tmp_path / "c"))
    assert verified_memo.default_directory() == str(tmp_path / "c" / "verified")
    monkeypatch.delenv(verified_memo.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert verified_memo.default_directory() == str(tmp_path / "x" / "airgap.docker" / "verified")


def test_same_file(archive):
    first = os.stat(archive)
    assert same_file(first, os.stat(archive))
    assert not same_file(first, None)
    with open(archive, "ab") as handle:
        handle.write(b"more")
    assert not same_file(first, os.stat(archive))
