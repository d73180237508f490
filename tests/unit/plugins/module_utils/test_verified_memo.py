# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import time

import pytest

from ansible_collections.airgap.docker.plugins.module_utils import verified_memo
from ansible_collections.airgap.docker.plugins.module_utils.checksums import stat_identity
from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError
from ansible_collections.airgap.docker.plugins.module_utils.sidecar import encode
from ansible_collections.airgap.docker.plugins.module_utils.verified_memo import VerifiedCache, VerifiedMemo, same_file, verified_cache_path

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


# VerifiedCache: a bundle directory's checksums ---------------------------------------------


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """The checksum memo goes to the user's cache directory; keep it in the test's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("AIRGAP_DOCKER_CACHE", raising=False)


def test_memo_lives_outside_the_bundle(tmp_path):
    path = verified_cache_path(str(tmp_path / "bundle"))
    assert path.startswith(str(tmp_path / "cache" / "airgap.docker" / "verified"))
    assert verified_cache_path(str(tmp_path / "bundle")) == path != verified_cache_path(str(tmp_path / "other"))


def test_memo_follows_the_collections_cache_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRGAP_DOCKER_CACHE", str(tmp_path / "elsewhere"))
    assert verified_cache_path(str(tmp_path / "bundle")).startswith(str(tmp_path / "elsewhere" / "verified") + os.sep)


def test_verified_cache_skips_rehashing_until_the_file_changes(tmp_path):
    (tmp_path / "images").mkdir()
    archive = tmp_path / "images" / "a.tar"
    archive.write_bytes(b"one")
    cache = VerifiedCache(str(tmp_path))
    digest, size, computed = cache.sha256("images/a.tar", str(archive))
    assert (digest, size, computed) == (hashlib.sha256(b"one").hexdigest(), 3, True)
    cache.save()
    again = VerifiedCache(str(tmp_path))
    assert again.sha256("images/a.tar", str(archive))[2] is False
    archive.write_bytes(b"two")
    os.utime(archive, ns=(1, 1))
    assert again.sha256("images/a.tar", str(archive))[:2] == (hashlib.sha256(b"two").hexdigest(), 3)


def test_memo_copied_with_the_bundle_vouches_for_nothing(tmp_path):
    original = tmp_path / "a"
    (original / "images").mkdir(parents=True)
    (original / "images" / "x.tar").write_bytes(b"data")
    cache = VerifiedCache(str(original))
    cache.sha256("images/x.tar", str(original / "images" / "x.tar"))
    cache.save()
    copy_dir = tmp_path / "b"
    shutil.copytree(original, copy_dir)  # like cp -a: same content, size and mtime, new inode and ctime
    (copy_dir / "images" / "x.tar").write_bytes(b"DATA")
    stat = os.stat(original / "images" / "x.tar")
    os.utime(copy_dir / "images" / "x.tar", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    digest, _size, computed = VerifiedCache(str(copy_dir)).sha256("images/x.tar", str(copy_dir / "images" / "x.tar"))
    assert computed and digest == hashlib.sha256(b"DATA").hexdigest()


def test_memo_that_cannot_be_written_is_skipped(tmp_path, monkeypatch):
    (tmp_path / "not-a-dir").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "not-a-dir"))
    cache = VerifiedCache(str(tmp_path / "bundle"))
    cache.entries["images/x"] = {"sha256": "0" * 64}
    cache.dirty = True
    cache.save()  # cannot be written: no error, the memo is only an optimization
    assert not os.path.exists(cache.path)
    assert not cache.dirty


# Manifest shapes: one sentence naming the field, never a traceback ----------------------------


def test_a_file_swapped_while_it_is_hashed_is_not_vouched_for(tmp_path, monkeypatch):
    (tmp_path / "images").mkdir()
    archive = tmp_path / "images" / "a.tar"
    archive.write_bytes(b"good")
    real = verified_memo.hash_open_file

    def swap_after_hashing(handle):
        result = real(handle)
        planted = tmp_path / "images" / "planted"
        planted.write_bytes(b"evil")
        os.rename(planted, archive)  # between the hash and any look at the path
        return result

    monkeypatch.setattr(verified_memo, "hash_open_file", swap_after_hashing)
    cache = VerifiedCache(str(tmp_path))
    assert cache.sha256("images/a.tar", str(archive))[0] == hashlib.sha256(b"good").hexdigest()
    monkeypatch.setattr(verified_memo, "hash_open_file", real)
    digest, _size, computed = cache.sha256("images/a.tar", str(archive))
    assert computed and digest == hashlib.sha256(b"evil").hexdigest()


def test_a_file_that_changes_while_it_is_hashed_is_not_remembered(tmp_path, monkeypatch):
    (tmp_path / "images").mkdir()
    archive = tmp_path / "images" / "a.tar"
    archive.write_bytes(b"good")
    monkeypatch.setattr(verified_memo, "hash_open_file", lambda handle: ("0" * 64, 4, None))
    cache = VerifiedCache(str(tmp_path))
    cache.sha256("images/a.tar", str(archive))
    assert "images/a.tar" not in cache.entries


def test_a_missing_file_is_one_sentence(tmp_path):
    with pytest.raises(ArchiveError, match="missing from the bundle"):
        VerifiedCache(str(tmp_path)).sha256("images/a.tar", str(tmp_path / "images" / "a.tar"))


def test_a_memo_of_an_earlier_version_still_counts(tmp_path):
    (tmp_path / "images").mkdir()
    archive = tmp_path / "images" / "a.tar"
    archive.write_bytes(b"one")
    path = verified_cache_path(str(tmp_path))
    os.makedirs(os.path.dirname(path), mode=0o700)
    with open(path, "wb") as handle:
        handle.write(encode({"images/a.tar": {"stat": stat_identity(os.stat(archive)), "sha256": "ab" * 32}}))
    assert VerifiedCache(str(tmp_path)).sha256("images/a.tar", str(archive)) == ("ab" * 32, 3, False)


@pytest.mark.parametrize("content", [b"[" * 100_000, b"not json", b'{"files": []}'])
def test_a_damaged_memo_is_an_empty_one(tmp_path, content):
    path = verified_cache_path(str(tmp_path))
    os.makedirs(os.path.dirname(path), mode=0o700)
    with open(path, "wb") as handle:
        handle.write(content)
    cache = VerifiedCache(str(tmp_path))
    assert not cache.wrote_this("manifest.json", b"x")


def test_the_memo_remembers_the_manifest_it_wrote(tmp_path):
    cache = VerifiedCache(str(tmp_path))
    cache.wrote("manifest.json", hashlib.sha256(b"ours").hexdigest())
    cache.save()
    again = VerifiedCache(str(tmp_path))
    assert again.wrote_this("manifest.json", b"ours") and not again.wrote_this("manifest.json", b"planted")
    assert stat.S_IMODE(os.stat(again.path).st_mode) == 0o600


def test_a_memo_others_may_write_is_ignored(tmp_path):
    cache = VerifiedCache(str(tmp_path))
    cache.wrote("manifest.json", hashlib.sha256(b"ours").hexdigest())
    cache.save()
    os.chmod(os.path.dirname(cache.path), 0o777)
    shared = VerifiedCache(str(tmp_path))
    assert not shared.wrote_this("manifest.json", b"ours")
    shared.wrote("manifest.json", hashlib.sha256(b"other").hexdigest())
    shared.save()  # not written into a directory others may write to
    os.chmod(os.path.dirname(cache.path), 0o700)
    assert VerifiedCache(str(tmp_path)).wrote_this("manifest.json", b"ours")


def test_a_fifo_in_place_of_a_bundle_file_is_refused_at_once(tmp_path):
    (tmp_path / "images").mkdir()
    os.mkfifo(tmp_path / "images" / "a.tar")
    with pytest.raises(ArchiveError, match="is not a regular file"):
        VerifiedCache(str(tmp_path)).sha256("images/a.tar", str(tmp_path / "images" / "a.tar"))
