# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import copy
import hashlib
import os
import shutil

import pytest

from ansible_collections.airgap.docker.plugins.module_utils import bundle
from ansible_collections.airgap.docker.plugins.module_utils.errors import ArchiveError, ChecksumMismatch, InvalidInput

LAYER = "sha256:" + "ab" * 32


def image_sidecar(sha="11" * 32, mtime=123):
    return {
        "schema": 1, "kind": "images",
        "archive": {"size": 10, "sha256": sha, "compression": "zstd", "layout": "legacy", "mtime_ns": mtime},
        "images": [{"config_digest": "sha256:" + "cd" * 32, "tags": ["b:1", "a:1"], "engine_id": "sha256:" + "cd" * 32,
                    "diff_ids": [LAYER], "fingerprint": "sha256:" + "ef" * 32, "created": "2026-01-02T03:04:05Z"}],
        "engine": {"version": "20.10"}, "request": {"images": ["a:1"]},
    }


def container_sidecar():
    return {
        "schema": 1, "kind": "container", "archive": {"size": 20, "sha256": "22" * 32, "compression": "zstd", "mtime_ns": 9},
        "images": [], "layer": {"sha256": LAYER, "size": 4096}, "config": {"Cmd": ["/bin/sh"]},
        "platform": {"os": "linux", "architecture": "amd64"}, "created": "2026-05-06T07:08:09.000000Z",
        "container": {"id": "c1", "name": "web", "image": "base:1", "started_at": "x"},
    }


def test_sidecar_loses_copy_specific_fields_only():
    normal = bundle.normalized_sidecar(image_sidecar())
    assert "mtime_ns" not in normal["archive"]
    assert "engine_id" not in normal["images"][0]
    assert normal["archive"]["sha256"] == "11" * 32


def test_same_archive_copied_elsewhere_gives_same_entry():
    first = bundle.archive_entry("images/a.tar.zst", image_sidecar(mtime=1))
    second = bundle.archive_entry("images/a.tar.zst", image_sidecar(mtime=2))
    assert first == second
    assert first[0]["images"][0]["tags"] == ["a:1", "b:1"]


def test_container_entry_plans_the_image_it_becomes():
    entry, _data = bundle.archive_entry("containers/web.tar.zst", container_sidecar(), "demo/web:snap")
    image = entry["images"][0]
    assert image["tags"] == ["demo/web:snap"]
    assert image["diff_ids"] == [LAYER]
    assert image["config_digest"].startswith("sha256:") and image["fingerprint"].startswith("sha256:")
    assert entry["container"] == {"name": "web", "id": "c1", "image": "base:1"}
    again, _data = bundle.archive_entry("containers/web.tar.zst", copy.deepcopy(container_sidecar()), "demo/web:snap")
    assert again == entry


def test_container_entry_needs_an_image_name():
    with pytest.raises(InvalidInput, match="needs the name"):
        bundle.archive_entry("containers/web.tar.zst", container_sidecar())


@pytest.mark.parametrize("path", ["../x.tar", "/etc/passwd", "images/../../x", "images/a/b.tar", "other/x.tar", "images/", "x.tar"])
def test_paths_outside_the_bundle_areas_are_refused(path):
    with pytest.raises(InvalidInput):
        bundle.safe_relative_path(path)


def test_foreign_sidecar_is_refused():
    with pytest.raises(InvalidInput, match=r"not an airgap\.docker sidecar"):
        bundle.archive_entry("images/a.tar", {"schema": 9, "kind": "images"})


def test_manifest_is_sorted_reproducible_and_dated_by_content():
    entries = [bundle.archive_entry("images/z.tar.zst", image_sidecar("33" * 32))[0],
               bundle.archive_entry("containers/web.tar.zst", container_sidecar(), "demo/web:snap")[0]]
    manifest = bundle.build_manifest(entries, {"host": "src"})
    assert [e["path"] for e in manifest["archives"]] == ["containers/web.tar.zst", "images/z.tar.zst"]
    assert "engine" not in manifest["source"]  # the two sidecars name different engines
    single = bundle.build_manifest(entries[:1], {"host": "src"})
    assert single["source"] == {"host": "src", "engine": {"version": "20.10"}}
    assert manifest["created"] == "2026-05-06T07:08:09.000000Z"
    assert bundle.encode(manifest) == bundle.encode(bundle.build_manifest(list(reversed(entries)), {"host": "src"}))


def test_duplicate_paths_are_refused():
    entry = bundle.archive_entry("images/a.tar.zst", image_sidecar())[0]
    with pytest.raises(InvalidInput, match="same file name"):
        bundle.build_manifest([entry, entry], {})


def test_sums_file_round_trips_and_covers_every_file():
    entry = bundle.archive_entry("images/a.tar.zst", image_sidecar())[0]
    manifest = bundle.build_manifest([entry], {})
    data = bundle.encode(manifest)
    sums = bundle.parse_sums(bundle.render_sums(manifest, data))
    assert sums == {"manifest.json": hashlib.sha256(data).hexdigest(), "images/a.tar.zst": "11" * 32,
                    "images/a.tar.zst.airgap.json": entry["sidecar"]["sha256"]}


def test_altered_sums_file_is_detected(tmp_path):
    manifest = bundle.build_manifest([bundle.archive_entry("images/a.tar.zst", image_sidecar())[0]], {})
    data = bundle.encode(manifest)
    (tmp_path / "SHA256SUMS").write_bytes(bundle.render_sums(manifest, data).replace(b"1111", b"2222", 1))
    with pytest.raises(ChecksumMismatch, match=r"images/a\.tar\.zst"):
        bundle.check_sums_file(str(tmp_path), manifest, data)


def test_stale_files_are_those_the_new_manifest_drops():
    old = bundle.build_manifest([bundle.archive_entry("images/a.tar.zst", image_sidecar())[0],
                                 bundle.archive_entry("images/b.tar.zst", image_sidecar())[0]], {})
    new = bundle.build_manifest([bundle.archive_entry("images/a.tar.zst", image_sidecar())[0]], {})
    assert bundle.stale_files(old, new) == ["images/b.tar.zst", "images/b.tar.zst.airgap.json"]
    assert bundle.stale_files(None, new) == []


def test_manifest_images_carry_their_archive():
    manifest = bundle.build_manifest([bundle.archive_entry("images/a.tar.zst", image_sidecar())[0]], {})
    assert [(i["archive"], i["tags"]) for i in bundle.manifest_images(manifest)] == [("images/a.tar.zst", ["a:1", "b:1"])]


def thin_entry(full="images/a.tar.zst", path="images/a+delta1.tar.zst", fingerprint=None):
    sidecar = image_sidecar(sha="33" * 32)
    sidecar["images"][0]["omitted_layers"] = 1
    if fingerprint:
        sidecar["images"][0]["fingerprint"] = fingerprint
    return bundle.archive_entry(path, sidecar, delta_of=full)[0]


def test_thin_entry_names_the_full_archive_it_stands_for():
    entry = thin_entry()
    assert entry["delta_of"] == "images/a.tar.zst"
    (record,) = bundle.manifest_images(bundle.build_manifest([entry], {}))
    assert record["delta_of"] == "images/a.tar.zst" and record["kind"] == "images" and record["omitted_layers"] == 1
    with pytest.raises(InvalidInput):
        bundle.archive_entry("images/a+delta1.tar.zst", image_sidecar(), delta_of="../outside.tar")


def test_bundle_with_thin_archives_is_schema_2():
    full = bundle.archive_entry("images/a.tar.zst", image_sidecar())[0]
    assert bundle.build_manifest([full], {})["schema"] == 1
    manifest = bundle.build_manifest([thin_entry()], {})
    assert manifest["schema"] == 2
    bundle.check_manifest(manifest, "manifest.json")
    with pytest.raises(ArchiveError, match="reads schemas 1 and 2"):
        bundle.check_manifest(dict(manifest, schema=3), "manifest.json")


def test_thin_entries_are_kept_while_their_full_archive_holds_the_same_images():
    full = bundle.archive_entry("images/a.tar.zst", image_sidecar())[0]
    old = bundle.build_manifest([full, thin_entry()], {})
    assert [e["path"] for e in bundle.deltas_to_keep(old, [full])] == ["images/a+delta1.tar.zst"]
    # A new version of the image: the old thin archive stands for something else now.
    newer = copy.deepcopy(image_sidecar(sha="44" * 32))
    newer["images"][0]["fingerprint"] = "sha256:" + "99" * 32
    assert bundle.deltas_to_keep(old, [bundle.archive_entry("images/a.tar.zst", newer)[0]]) == []
    # The full archive is gone from the list, or the thin one is written again this run.
    assert bundle.deltas_to_keep(old, []) == []
    assert bundle.deltas_to_keep(old, [full, thin_entry()]) == []
    assert bundle.deltas_to_keep(None, [full]) == []


def test_read_manifest_refuses_foreign_and_future_documents(tmp_path):
    assert bundle.read_manifest(str(tmp_path)) == (None, None)
    (tmp_path / "manifest.json").write_text('{"kind": "something else"}')
    with pytest.raises(ArchiveError, match=r"not an airgap\.docker bundle"):
        bundle.read_manifest(str(tmp_path))
    (tmp_path / "manifest.json").write_text('{"kind": "airgap.docker/bundle", "schema": 3}')
    with pytest.raises(ArchiveError, match="schema 3"):
        bundle.read_manifest(str(tmp_path))
    (tmp_path / "manifest.json").write_text('{"kind": "airgap.docker/bundle", "schema": 1, "archives": [{"path": "../x"}]}')
    with pytest.raises(InvalidInput):
        bundle.read_manifest(str(tmp_path))


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """The checksum memo goes to the user's cache directory; keep it in the test's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def test_memo_lives_outside_the_bundle(tmp_path):
    path = bundle.verified_cache_path(str(tmp_path / "bundle"))
    assert path.startswith(str(tmp_path / "cache" / "airgap.docker" / "verified"))
    assert bundle.verified_cache_path(str(tmp_path / "bundle")) == path != bundle.verified_cache_path(str(tmp_path / "other"))


def test_verified_cache_skips_rehashing_until_the_file_changes(tmp_path):
    (tmp_path / "images").mkdir()
    archive = tmp_path / "images" / "a.tar"
    archive.write_bytes(b"one")
    cache = bundle.VerifiedCache(str(tmp_path))
    digest, size, computed = cache.sha256("images/a.tar", str(archive))
    assert (digest, size, computed) == (hashlib.sha256(b"one").hexdigest(), 3, True)
    cache.save()
    again = bundle.VerifiedCache(str(tmp_path))
    assert again.sha256("images/a.tar", str(archive))[2] is False
    archive.write_bytes(b"two")
    os.utime(archive, ns=(1, 1))
    assert again.sha256("images/a.tar", str(archive))[:2] == (hashlib.sha256(b"two").hexdigest(), 3)


def test_memo_copied_with_the_bundle_vouches_for_nothing(tmp_path):
    original = tmp_path / "a"
    (original / "images").mkdir(parents=True)
    (original / "images" / "x.tar").write_bytes(b"data")
    cache = bundle.VerifiedCache(str(original))
    cache.sha256("images/x.tar", str(original / "images" / "x.tar"))
    cache.save()
    copy_dir = tmp_path / "b"
    shutil.copytree(original, copy_dir)  # like cp -a: same content, size and mtime, new inode and ctime
    (copy_dir / "images" / "x.tar").write_bytes(b"DATA")
    stat = os.stat(original / "images" / "x.tar")
    os.utime(copy_dir / "images" / "x.tar", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    digest, _size, computed = bundle.VerifiedCache(str(copy_dir)).sha256("images/x.tar", str(copy_dir / "images" / "x.tar"))
    assert computed and digest == hashlib.sha256(b"DATA").hexdigest()


def test_memo_that_cannot_be_written_is_skipped(tmp_path, monkeypatch):
    (tmp_path / "not-a-dir").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "not-a-dir"))
    cache = bundle.VerifiedCache(str(tmp_path / "bundle"))
    cache.entries["images/x"] = {"sha256": "0" * 64}
    cache.dirty = True
    cache.save()  # cannot be written: no error, the memo is only an optimization
    assert not os.path.exists(cache.path)
    assert not cache.dirty
